"""The complex level of the two-level latent space, measured on data whose factors depend on each
other (``dsprites-style-tied``): the complex latents are the positions a GAN's generator draws, read
off each generated image (:func:`read_factors`), and an affine map from the atomic codes to them,
fitted on a few labelled images the same way for every model (:func:`complex_level`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.nn import functional as F

from disentangle import metrics
from disentangle.data.base import GroundTruthData
from disentangle.data.correlated import CorrelatedFactors
from disentangle.gan.networks import TwoLevelGAN


def read_factors(
    source: GroundTruthData, images: torch.Tensor, chunk: int = 512
) -> np.ndarray:
    """The factors of each image as those of the nearest image of the grid (squared distance at
    the images' resolution): a model-free reading of what a generator drew. For small grids."""
    grid_factors = source.factors(np.arange(len(source)))
    reference = source.images(grid_factors)
    size = images.shape[-1]
    if reference.shape[-1] != size:
        reference = F.adaptive_avg_pool2d(reference, size)
    reference = reference.flatten(1)
    nearest = []
    for start in range(0, len(images), chunk):
        flat = images[start:start + chunk].float().cpu().flatten(1)
        nearest.append(torch.cdist(flat, reference).argmin(dim=1))
    return grid_factors[torch.cat(nearest).numpy()]


@torch.no_grad()
def measure(
    source: CorrelatedFactors,
    encode: Callable[[torch.Tensor], torch.Tensor],
    generate: Callable[..., torch.Tensor],
    sample_codes: Callable[..., tuple],
    device: torch.device,
    num: int = 2000,
    labelled: int = 256,
    seed: int = 0,
) -> dict:
    """Measure both levels of a GAN trained on data with dependent factors (``source.over``), from
    ``encode`` (Q's code means of real images) and ``generate`` (images of given codes and noise,
    ``generate(codes, noise=noise)``), drawing codes and noise from the prior with
    ``sample_codes(n, device, generator)`` (:meth:`TwoLevelGAN.sample_codes`):

    - ``atomic_tc``: Gaussian total correlation of Q's codes on real images (the atomic level
      should stay nearly independent);
    - ``mi_generated``: I between the dependent factors as read (:func:`read_factors`) off
      ``num`` images generated from the code and noise prior: the complex latents the generator
      realises; ``mi_true`` is the data's exact value and ``mi_real_plugin`` the same plug-in
      estimate on ``num`` real images (the estimator's own bias);
    - the *readout*, the complex level: an affine map from the atomic codes of real images to the
      dependent factors, fitted by least squares on ``labelled`` images, the same for every model
      (one whose codes were aligned with the factors can only gain from it, since its fixed map is
      affine too); ``readout_r2`` scores it on the other ``num - labelled`` real images;
    - ``control_r2``: R^2 of the dependent factors read off the generated images, predicted by the
      readout from the codes the generator was given: whether the complex level still drives what
      is generated. ``control_r2_min`` is that of the worse-controlled factor.
    """
    if not 2 < labelled < num - 2:
        raise ValueError(f"Need 2 < labelled < num - 2 to fit and score the readout; got "
                         f"labelled={labelled}, num={num}.")
    rng = np.random.default_rng(seed)
    a, b = source.over
    ka, kb = source.factor_index(a), source.factor_index(b)
    gen = torch.Generator(device=device).manual_seed(seed)
    noise, codes, _ = sample_codes(num, device, gen)
    fake = torch.cat([generate(codes[i:i + 512], noise=noise[i:i + 512]).float().cpu()
                      for i in range(0, num, 512)])
    drawn = read_factors(source, fake)[:, [ka, kb]].astype(float)
    factors = source.sample_factors(num, rng)
    atomic = encode(source.images(factors)).numpy()
    design = np.c_[atomic, np.ones(num)]
    targets = factors[:, [ka, kb]].astype(float)
    weights, *_ = np.linalg.lstsq(design[:labelled], targets[:labelled], rcond=None)
    residual = targets[labelled:] - design[labelled:] @ weights
    r2 = 1 - residual.var(axis=0) / targets[labelled:].var(axis=0)
    predicted = np.c_[codes.float().cpu().numpy(), np.ones(num)] @ weights
    control = 1 - ((drawn - predicted) ** 2).mean(axis=0) / drawn.var(axis=0)
    return {
        "factors": [a, b],
        "atomic_tc": metrics.gaussian_total_correlation(atomic),
        "mi_true": source.mutual_information(a, b),
        "mi_real_plugin": metrics.plugin_mutual_information(factors[:, ka], factors[:, kb]),
        "mi_generated": metrics.plugin_mutual_information(drawn[:, 0].astype(int),
                                                          drawn[:, 1].astype(int)),
        "readout_r2": {a: float(r2[0]), b: float(r2[1])},
        "control_r2": {a: float(control[0]), b: float(control[1])},
        "control_r2_min": float(control.min()),
    }


def complex_level(
    model: TwoLevelGAN,
    source: CorrelatedFactors,
    num: int = 2000,
    labelled: int = 256,
    seed: int = 0,
) -> dict:
    """:func:`measure` on a trained GAN."""
    model.eval()
    return measure(source, model.encode, model.generate, model.sample_codes,
                   next(model.parameters()).device, num, labelled, seed)

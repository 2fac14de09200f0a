"""The beta the exact DisTIB objective sees (chapter 05).

The trained loss weighs half the squared error of a unit-variance Gaussian decoder by w
(``reconstruction_weight``). Were the decoder's variance matched to its errors, s^2 per pixel, its
negative log-likelihood would be that squared error over 2 s^2: the trained reconstruction term is
w s^2 times the matched one. Divided by w s^2, the loss is the exact objective with the label term
weighed 1 / (w s^2) and the compression terms beta / (w s^2) (:func:`exact_beta`), a local,
linearised reading that holds while s^2 stays near its trained value. The loss sees the decoder's
output on *sampled* codes, so s^2 is measured there (:func:`residual_variance`); on the codes'
means it is smaller and would overstate the exact beta.

Not part of a run's recorded metrics: a chapter or a tool measures it on a loaded model.
"""

from __future__ import annotations

import torch

from disentangle.supervised.networks import DisTIB
from disentangle.supervised.settings import SupervisedSettings


def residual_variance(model: DisTIB, images: torch.Tensor, sampled: bool = True,
                      seed: int = 0) -> float:
    """s^2: the mean squared error per pixel of the decoder's output on ``images`` (pixels in
    [0, 1], the decoder's targets), from codes drawn from the posteriors (``sampled``, as the loss
    sees them; the draw seeded by ``seed``) or from their means. Needs a Gaussian decoder."""
    if not isinstance(model, DisTIB) or model.likelihood != "gaussian":
        raise ValueError("residual_variance needs a DisTIB model with a Gaussian decoder "
                         "(likelihood='gaussian', as the paper preset has).")
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if sampled:
            output = model(images)["reconstruction"]
        else:
            codes = model.posteriors(images)
            output = model.decoder(torch.cat([codes["mean_a"], codes["mean_z"]], 1))
    return (output - images).pow(2).mean().item()


def exact_beta(settings: SupervisedSettings, s2: float) -> float:
    """beta / (w s^2): the weight of the compression terms once the loss is divided by w s^2."""
    if s2 <= 0:
        raise ValueError(f"s^2 must be positive; got {s2}.")
    return settings.beta / (settings.reconstruction_weight * s2)

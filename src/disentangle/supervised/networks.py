"""The supervised family's networks: DisTIB (a label code A and a sample code Z, from which the
two-step method differs only in where the reconstruction's gradient stops), and its baselines VIB
and DisenIB. Each takes images in [0, 1] (:func:`disentangle.nets.to_signed` on entry)."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
from torch import nn

from disentangle.nets import (
    Decoder,
    GaussianEncoder,
    encoder_body,
    reparameterize,
    to_signed,
)


class TwoCodes(nn.Module, ABC):
    """What the two-code models (DisTIB, the two-step method, DisenIB) share for evaluation: a
    label code read by a linear ``classifier`` and a second code, ``encode`` giving both from an
    image, ``decode`` an image from both, and ``swap`` crossing them between images."""

    image_shape: tuple[int, ...]
    classifier: nn.Linear

    @abstractmethod
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The label code and the second code of ``x``, their means."""

    @abstractmethod
    def decode(self, a: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] decoded from a label code and a second code."""

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits from the label code's mean."""
        return self.classifier(self.encode(x)[0])

    def swap(self, x_a: torch.Tensor, x_z: torch.Tensor) -> torch.Tensor:
        """Images (len(x_a), len(x_z), C, H, W): entry [i, j] is decoded from the label code of
        x_a[i] and the second code of x_z[j]. The label should follow the rows and the style the
        columns."""
        a, _ = self.encode(x_a)
        _, z = self.encode(x_z)
        rows, cols = len(a), len(z)
        pairs_a = a[:, None].expand(rows, cols, -1).reshape(rows * cols, -1)
        pairs_z = z[None].expand(rows, cols, -1).reshape(rows * cols, -1)
        return self.decode(pairs_a, pairs_z).reshape(rows, cols, *self.image_shape)


def _to_pixels(output: torch.Tensor, likelihood: str) -> torch.Tensor:
    """A decoder's output as an image in [0, 1]: the Bernoulli means, or the Gaussian means
    clipped to the pixel range."""
    return torch.sigmoid(output) if likelihood == "bernoulli" else output.clamp(0, 1)


class DisTIB(TwoCodes):
    """The transmitted-information bottleneck: a label code A and a style code Z, each from its own
    Gaussian encoder, a decoder q(x | a, z) and a linear classifier q(y | a) = softmax(W a + b).

    ``encoder`` and ``decoder`` are ``mlp`` or ``conv`` each (convolutions see shapes far sooner
    than an MLP does; an MLP decoder is cheap). ``forward`` returns every tensor the bound needs;
    ``encode`` gives the means used for evaluation; ``swap`` decodes the A of one batch with the Z
    of another.

    ``decoder_trains_a=False`` stops the reconstruction's gradient at A: the loss is unchanged, but
    A's encoder then learns from the classifier and its own KL term only, which is VIB's objective,
    while Z and the decoder form a conditional VAE given A. That is the two-step method of Hadad et
    al. (2018) trained in one pass, the baseline the book calls ``twostep``; the paper trains every
    term jointly, the default.
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        num_classes: int,
        dim_a: int = 8,
        dim_z: int = 8,
        encoder: str = "mlp",
        decoder: str = "mlp",
        hidden: int = 512,
        depth: int = 2,
        activation: str = "relu",
        separate: bool = False,
        likelihood: str = "bernoulli",
        width: int = 32,
        decoder_trains_a: bool = True,
    ):
        super().__init__()
        if likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"Unknown likelihood {likelihood!r}; use 'bernoulli' or 'gaussian'.")
        self.image_shape = tuple(image_shape)
        self.num_classes, self.likelihood = num_classes, likelihood
        self.decoder_trains_a = decoder_trains_a
        options = dict(hidden=hidden, depth=depth, activation=activation)
        coding = dict(kind=encoder, separate=separate, width=width, **options)
        self.encoder_a = GaussianEncoder(image_shape, dim_a, **coding)
        self.encoder_z = GaussianEncoder(image_shape, dim_z, **coding)
        self.decoder = Decoder(dim_a + dim_z, image_shape, kind=decoder, **options)
        self.classifier = nn.Linear(dim_a, num_classes)

    def posteriors(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Means and log-variances of p(a | x) and p(z | x)."""
        signed = to_signed(x)
        mean_a, log_var_a = self.encoder_a(signed)
        mean_z, log_var_z = self.encoder_z(signed)
        return {"mean_a": mean_a, "log_var_a": log_var_a, "mean_z": mean_z, "log_var_z": log_var_z}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.posteriors(x)
        a = reparameterize(out["mean_a"], out["log_var_a"])
        z = reparameterize(out["mean_z"], out["log_var_z"])
        return {
            **out,
            "logits": self.classifier(a),
            "reconstruction": self.decoder(
                torch.cat([a if self.decoder_trains_a else a.detach(), z], 1)
            ),
        }

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Means of A and Z, the codes the book evaluates."""
        signed = to_signed(x)
        return self.encoder_a(signed)[0], self.encoder_z(signed)[0]

    def decode(self, a: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] decoded from codes A and Z."""
        return _to_pixels(self.decoder(torch.cat([a, z], 1)), self.likelihood)


class DisenIBEstimator(nn.Module):
    """DisenIB's estimator of the dependence of S and T, as its reference code builds it: s and t
    each projected to ``width`` units, then two layers of 2 ``width`` LeakyReLU(0.2) units and
    one output, every linear map spectrally normalised. It is trained as a least-squares critic
    (:func:`disentangle.supervised.objectives.disenib_estimator_loss`): +1 on pairs drawn from the
    product of the marginals, -1 on joint pairs."""

    def __init__(self, dim_s: int, dim_t: int, width: int = 128):
        super().__init__()
        norm = nn.utils.parametrizations.spectral_norm
        self.style = norm(nn.Linear(dim_s, width))
        self.label = norm(nn.Linear(dim_t, width))
        self.body = nn.Sequential(
            norm(nn.Linear(2 * width, 2 * width)), nn.LeakyReLU(0.2),
            norm(nn.Linear(2 * width, 2 * width)), nn.LeakyReLU(0.2),
            norm(nn.Linear(2 * width, 1)),
        )

    def forward(self, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([self.style(s), self.label(t)], 1)).squeeze(1)


class DisenIB(TwoCodes):
    """The disentangled information bottleneck (Pan, Niu, Zhang and Zhang, AAAI 2021), which
    maximises I(T; Y) + I(X; S, Y) - I(S; T) with a label code T and a style code S, built as its
    reference code builds it.

    Both encoders are deterministic; the codes the objective sees are t + N(0, 1) and
    s + N(0, 0.1^2) (:data:`NOISE`), so that p(t | x) and p(s | x) are Gaussians of fixed variance
    and the book's estimators read them as any other encoder's. A linear classifier reads T; the
    decoder reconstructs the image in [-1, 1] from S and a learned embedding of the label y (not
    from T); :class:`DisenIBEstimator` measures how far (s, t) pairs look dependent. Here A names T
    and Z names S, so that the book's evaluation reads both models alike; a swap decodes the Z of
    one image with the label that the A of another is classified as."""

    #: Standard deviation of the noise on T and on S.
    NOISE = {"a": 1.0, "z": 0.1}

    def __init__(
        self,
        image_shape: Sequence[int],
        num_classes: int,
        dim_a: int = 8,
        dim_z: int = 8,
        encoder: str = "mlp",
        decoder: str = "mlp",
        hidden: int = 512,
        depth: int = 2,
        activation: str = "relu",
        width: int = 32,
    ):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.num_classes = num_classes
        options = dict(hidden=hidden, depth=depth, activation=activation)
        body_a, size = encoder_body(image_shape, encoder, width=width, **options)
        body_z, _ = encoder_body(image_shape, encoder, width=width, **options)
        self.encoder_a = nn.Sequential(body_a, nn.Linear(size, dim_a))
        self.encoder_z = nn.Sequential(body_z, nn.Linear(size, dim_z))
        self.embedding = nn.Embedding(num_classes, dim_a)
        self.decoder = Decoder(dim_z + dim_a, image_shape, kind=decoder, **options)
        self.classifier = nn.Linear(dim_a, num_classes)
        self.estimator = DisenIBEstimator(dim_z, dim_a)
        # Main updates so far, so that the warm-up and the schedule survive a resume; and the
        # estimator's last mean outputs on joint and on product pairs (whether it learned).
        self.register_buffer("batches_seen", torch.zeros((), dtype=torch.long))
        self.register_buffer("estimator_readings", torch.zeros(2))

    def posteriors(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The codes' means and their fixed log-variances (of the noise added in training)."""
        signed = to_signed(x)
        mean_a, mean_z = self.encoder_a(signed), self.encoder_z(signed)
        out = {"mean_a": mean_a, "mean_z": mean_z}
        for name, mean in (("a", mean_a), ("z", mean_z)):
            out[f"log_var_{name}"] = torch.full_like(mean, 2 * math.log(self.NOISE[name]))
        return out

    def main_parameters(self) -> list[nn.Parameter]:
        """Everything but the estimator: what the main optimizer updates."""
        return [p for name, p in self.named_parameters() if not name.startswith("estimator.")]

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The codes' means, T and S."""
        signed = to_signed(x)
        return self.encoder_a(signed), self.encoder_z(signed)

    def reconstruct(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The image in [-1, 1] decoded from style codes ``z`` and labels ``y``."""
        return self.decoder(torch.cat([z, self.embedding(y)], 1))

    def decode(self, a: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] decoded from the style code ``z`` and the label that ``a`` is
        classified as."""
        label = self.classifier(a).argmax(1)
        return ((self.reconstruct(z, label) + 1) / 2).clamp(0, 1)


class VIB(nn.Module):
    """The deep variational information bottleneck (Alemi et al. 2017): one Gaussian code Z and a
    classifier q(y | z); no decoder. The baseline DisTIB is compared against."""

    def __init__(
        self,
        image_shape: Sequence[int],
        num_classes: int,
        dim_z: int = 8,
        encoder: str = "mlp",
        hidden: int = 512,
        depth: int = 2,
        activation: str = "relu",
        separate: bool = False,
        width: int = 32,
    ):
        super().__init__()
        self.image_shape, self.num_classes = tuple(image_shape), num_classes
        self.encoder = GaussianEncoder(
            image_shape,
            dim_z,
            kind=encoder,
            hidden=hidden,
            depth=depth,
            activation=activation,
            separate=separate,
            width=width,
        )
        self.classifier = nn.Linear(dim_z, num_classes)

    def posteriors(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Mean and log-variance of p(z | x)."""
        mean_z, log_var_z = self.encoder(to_signed(x))
        return {"mean_z": mean_z, "log_var_z": log_var_z}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.posteriors(x)
        return {**out, "logits": self.classifier(reparameterize(out["mean_z"], out["log_var_z"]))}

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Mean of Z."""
        return self.encoder(to_signed(x))[0]

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits from the mean of Z."""
        return self.classifier(self.encode(x))

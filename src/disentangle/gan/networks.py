"""The GAN family's networks: the generator G(z, c), the discriminator's shared trunk with its D
and Q heads (the reference dSprites networks of InfoGAN, at 28, 32 or 64 pixels), and
:class:`TwoLevelGAN`, which holds them with the code prior they share."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from disentangle.data.ground_truth import resize
from disentangle.gan.settings import GanSettings
from disentangle.nets import LOG_VAR_RANGE, Critic

#: (start size, transposed-conv widths) of the generator per image size: 64 x 64 is the reference
#: dSprites network (64 x 4 x 4, then 64, 32, 32 channels); smaller images stop earlier.
_GAN_LAYOUT = {64: (4, (64, 32, 32)), 32: (4, (64, 32)), 28: (7, (32,))}


def _gan_size(image_shape: Sequence[int]) -> int:
    _, height, width = image_shape
    if height != width or height not in _GAN_LAYOUT:
        raise ValueError(
            f"The GAN takes square 28, 32 or 64 pixel images; got {height} x {width}."
        )
    return height


class Generator(nn.Module):
    """G(z, c): the latent (noise z, continuous codes c, one-hot categorical codes, concatenated)
    through FC 128 -> FC 1024 -> 64 x s x s, then stride-2 transposed convolutions with
    BatchNorm up to the image, and a sigmoid (pixels in [0, 1])."""

    def __init__(self, latent_dim: int, image_shape: Sequence[int] = (1, 64, 64)):
        super().__init__()
        self.latent_dim = latent_dim
        self.image_shape = tuple(image_shape)
        start, widths = _GAN_LAYOUT[_gan_size(image_shape)]
        self.start = start
        self.body = nn.Sequential(
            nn.Linear(latent_dim, 128), nn.BatchNorm1d(128), nn.ReLU(),
            nn.Linear(128, 1024), nn.BatchNorm1d(1024), nn.ReLU(),
            nn.Linear(1024, 64 * start * start), nn.BatchNorm1d(64 * start * start), nn.ReLU(),
        )
        layers: list[nn.Module] = []
        for a, b in zip((64, *widths[:-1]), widths):
            layers += [nn.ConvTranspose2d(a, b, 4, stride=2, padding=1), nn.BatchNorm2d(b),
                       nn.ReLU()]
        layers.append(nn.ConvTranspose2d(widths[-1], image_shape[0], 4, stride=2, padding=1))
        self.deconv = nn.Sequential(*layers)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        if latent.ndim != 2 or latent.shape[1] != self.latent_dim:
            raise ValueError(
                f"The generator takes latents (N, {self.latent_dim}); got {tuple(latent.shape)}."
            )
        hidden = self.body(latent).view(-1, 64, self.start, self.start)
        return torch.sigmoid(self.deconv(hidden))


def _spectral(layer: nn.Module) -> nn.Module:
    # Initialise the real weight first, then wrap: the parametrisation normalises whatever
    # weight it finds, so initialising after wrapping would touch only a derived tensor.
    nn.init.normal_(layer.weight, 0.0, 0.02)
    nn.init.zeros_(layer.bias)
    return nn.utils.parametrizations.spectral_norm(layer)


class Discriminator(nn.Module):
    """The shared trunk (stride-2 spectral-norm convolutions, LeakyReLU(0.1), FC 128) with two
    heads: D, one real/fake logit, and Q, the posterior Q(c | x) = N(mu(x), diag sigma^2(x)) over
    the continuous codes (learned, clamped log-variance) plus softmax logits per categorical code.

    ``forward`` returns ``logit``, ``mean``, ``log_var`` and ``categorical`` (a list of logits).
    """

    def __init__(
        self,
        code_dim: int,
        categorical: Sequence[int] = (),
        image_shape: Sequence[int] = (1, 64, 64),
    ):
        super().__init__()
        size = _gan_size(image_shape)
        widths = {64: (32, 32, 64, 64), 32: (32, 64, 64), 28: (32, 64)}[size]
        layers: list[nn.Module] = []
        for a, b in zip((image_shape[0], *widths[:-1]), widths):
            layers += [_spectral(nn.Conv2d(a, b, 4, stride=2, padding=1)), nn.LeakyReLU(0.1)]
        final = size // 2 ** len(widths)
        layers += [nn.Flatten(), _spectral(nn.Linear(widths[-1] * final * final, 128)),
                   nn.LeakyReLU(0.1)]
        self.trunk = nn.Sequential(*layers)
        self.d_head = _spectral(nn.Linear(128, 1))
        self.code_dim, self.categorical = code_dim, tuple(int(k) for k in categorical)
        self.q_head = nn.Sequential(
            nn.Linear(128, 128), nn.LeakyReLU(0.1),
            nn.Linear(128, 2 * code_dim + sum(self.categorical)),
        )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        features = self.trunk(x)
        q = self.q_head(features)
        mean, log_var, rest = q.split([self.code_dim, self.code_dim, sum(self.categorical)], 1)
        return {
            "logit": self.d_head(features).squeeze(1),
            "mean": mean,
            "log_var": log_var.clamp(*LOG_VAR_RANGE),
            "categorical": list(rest.split(self.categorical, 1)) if self.categorical else [],
        }

    def head_parameters(self, head: str) -> list[nn.Parameter]:
        """The parameters of ``"d"`` (trunk and D head: the discriminator's player) or ``"q"``
        (the Q head, trained with the generator)."""
        if head == "d":
            return [*self.trunk.parameters(), *self.d_head.parameters()]
        if head == "q":
            return list(self.q_head.parameters())
        raise ValueError(f"Unknown head {head!r}; use 'd' or 'q'.")


class TwoLevelGAN(torch.nn.Module):
    """The generator, the discriminator with its D and Q heads, and (for the density-ratio
    estimator) the permutation discriminator T, with the code prior and the image size they share.
    """

    def __init__(self, run: GanSettings, channels: int = 1):
        super().__init__()
        self.run = run
        shape = (channels, run.resolution, run.resolution)
        self.latent_dim = run.noise_dim + run.code_dim + sum(run.categorical)
        self.generator = Generator(self.latent_dim, shape)
        self.discriminator = Discriminator(run.code_dim, run.categorical, shape)
        self.tc_critic = (
            Critic(run.code_dim, run.critic_hidden, run.critic_layers)
            if run.model == "tcgan" and run.estimator == "drt" else None
        )

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Real images (N, C, H, W) in [0, 1] at the run's resolution (area-averaged down)."""
        return resize(images, self.run.resolution)

    def sample_codes(
        self, n: int, device: torch.device, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Noise z ~ N(0, I), continuous codes c ~ U(-1, 1) and categorical classes (or None)."""
        noise = torch.randn(n, self.run.noise_dim, device=device, generator=generator)
        codes = torch.rand(n, self.run.code_dim, device=device, generator=generator) * 2 - 1
        classes = None
        if self.run.categorical:
            classes = torch.stack([
                torch.randint(0, k, (n,), device=device, generator=generator)
                for k in self.run.categorical
            ], dim=1)
        return noise, codes, classes

    def latent(
        self, noise: torch.Tensor, codes: torch.Tensor, classes: torch.Tensor | None = None
    ) -> torch.Tensor:
        parts = [noise, codes]
        if self.run.categorical:
            parts += [F.one_hot(classes[:, k], size).float()
                      for k, size in enumerate(self.run.categorical)]
        return torch.cat(parts, dim=1)

    def generate(self, codes: torch.Tensor, noise: torch.Tensor | None = None,
                 classes: torch.Tensor | None = None) -> torch.Tensor:
        """G(z, c) for given continuous codes (noise zero and the first class unless given)."""
        n = len(codes)
        noise = torch.zeros(n, self.run.noise_dim, device=codes.device) if noise is None else noise
        if self.run.categorical and classes is None:
            classes = torch.zeros(n, len(self.run.categorical), dtype=torch.long,
                                  device=codes.device)
        return self.generator(self.latent(noise, codes, classes))

    @torch.no_grad()
    def encode(self, images: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
        """Q-head means of the continuous codes for real images: the representation the metrics
        score."""
        self.eval()
        device = next(self.parameters()).device
        parts = [self.discriminator(self.prepare(images[i:i + chunk].to(device)))["mean"].float()
                 for i in range(0, len(images), chunk)]
        return torch.cat(parts).cpu()

"""The networks' shared building blocks: MLP and convolutional bodies, the Gaussian encoder, the
decoder, the reparameterised sample and the one critic of the book (:class:`Critic`). Each
family's own networks are in its package (:mod:`disentangle.supervised.networks`,
:mod:`disentangle.gan.networks`, :mod:`disentangle.vae.networks`).

Every network takes images in [0, 1] and maps them to [-1, 1] on entry (:func:`to_signed`), the
input range of the DisenIB robustness protocol, so that an FGSM step of size eps means what it
means in the papers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.2), "elu": nn.ELU}
LOG_VAR_RANGE = (-12.0, 8.0)  # keeps exp(log_var) finite in bf16 and fp32 alike


def _activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"Unknown activation {name!r}; valid ones are {', '.join(ACTIVATIONS)}.")
    return ACTIVATIONS[name]()


def mlp(sizes: Sequence[int], activation: str = "relu") -> nn.Sequential:
    """Linear layers of the given sizes with ``activation`` between them (none after the last)."""
    layers: list[nn.Module] = []
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if k < len(sizes) - 2:
            layers.append(_activation(activation))
    return nn.Sequential(*layers)


def conv_trunk(
    image_shape: Sequence[int], width: int = 32, activation: str = "relu"
) -> tuple[nn.Sequential, int]:
    """Stride-2 convolutions from (C, 28, 28) or (C, 64, 64) down to 4 x 4 (3 x 3 for 28), each
    followed by ``activation``, flattened. Returns the trunk and its output size."""
    channels, height, width_px = image_shape
    if (height, width_px) not in ((28, 28), (32, 32), (64, 64)):
        raise ValueError(
            "Convolutional models take 28 x 28, 32 x 32 or 64 x 64 images; "
            f"got {height} x {width_px}."
        )
    widths = [channels, width, width, 2 * width] + ([2 * width] if height == 64 else [])
    layers: list[nn.Module] = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Conv2d(a, b, 4, stride=2, padding=1), _activation(activation)]
    layers.append(nn.Flatten())
    trunk = nn.Sequential(*layers)
    with torch.no_grad():
        size = trunk(torch.zeros(1, *image_shape)).shape[1]
    return trunk, size


def encoder_body(
    image_shape: Sequence[int],
    kind: str = "mlp",
    hidden: int = 1024,
    depth: int = 2,
    activation: str = "relu",
    width: int = 32,
) -> tuple[nn.Module, int]:
    """An encoder's body from images to features, and its output size: ``depth`` hidden layers of
    ``hidden`` units on the flattened pixels (``mlp``), or stride-2 convolutions ``width`` channels
    wide and one hidden layer (``conv``); ``activation`` after every layer."""
    if kind == "conv":
        trunk, size = conv_trunk(image_shape, width, activation)
        return nn.Sequential(trunk, nn.Linear(size, hidden), _activation(activation)), hidden
    if kind != "mlp":
        raise ValueError(f"Unknown encoder kind {kind!r}; use 'mlp' or 'conv'.")
    inputs = int(torch.tensor(image_shape).prod())
    layers = mlp([inputs] + [hidden] * depth, activation)
    return nn.Sequential(nn.Flatten(), layers, _activation(activation)), hidden


class GaussianEncoder(nn.Module):
    """p(c | x) = N(mu(x), diag exp(log_var(x))), with the mean and the log-variance computed by
    one shared body and two linear heads, or (``separate=True``, as the DisTIB paper describes)
    by two separate networks. ``kind`` is ``mlp`` (on flattened pixels) or ``conv`` (stride-2
    convolutions ``width`` channels wide, then one hidden layer)."""

    def __init__(
        self,
        image_shape: Sequence[int],
        latent_dim: int,
        kind: str = "mlp",
        hidden: int = 1024,
        depth: int = 2,
        activation: str = "relu",
        separate: bool = False,
        width: int = 32,
    ):
        super().__init__()
        self.latent_dim = latent_dim
        shape = dict(kind=kind, hidden=hidden, depth=depth, activation=activation, width=width)
        self.body, size = encoder_body(image_shape, **shape)
        self.mean = nn.Linear(size, latent_dim)
        self.var_body = encoder_body(image_shape, **shape)[0] if separate else None
        self.log_var = nn.Linear(size, latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance, each (n, latent_dim); the log-variance is clamped to a range
        where its exponential stays finite."""
        h = self.body(x)
        h_var = h if self.var_body is None else self.var_body(x)
        return self.mean(h), self.log_var(h_var).clamp(*LOG_VAR_RANGE)


class Decoder(nn.Module):
    """q(x | c): maps a code (n, latent_dim) to per-pixel logits (Bernoulli likelihood) or means
    (unit-variance Gaussian likelihood) of shape (n, C, H, W)."""

    def __init__(
        self,
        latent_dim: int,
        image_shape: Sequence[int],
        kind: str = "mlp",
        hidden: int = 1024,
        depth: int = 2,
        activation: str = "relu",
    ):
        super().__init__()
        self.image_shape = tuple(image_shape)
        channels, height, _ = image_shape
        if kind == "mlp":
            outputs = int(torch.tensor(image_shape).prod())
            self.net = mlp([latent_dim] + [hidden] * depth + [outputs], activation)
        elif kind == "conv":
            start = 4 if height in (32, 64) else 7
            steps = {28: 2, 32: 3, 64: 4}[height]
            widths = [64] * (steps - 1) + [32]
            layers: list[nn.Module] = [
                nn.Linear(latent_dim, hidden),
                _activation(activation),
                nn.Linear(hidden, 64 * start * start),
                _activation(activation),
                nn.Unflatten(1, (64, start, start)),
            ]
            previous = 64
            for k, w in enumerate(widths):
                layers.append(nn.ConvTranspose2d(previous, w, 4, stride=2, padding=1))
                if k < len(widths) - 1:
                    layers.append(_activation(activation))
                previous = w
            layers += [_activation(activation), nn.Conv2d(previous, channels, 3, padding=1)]
            self.net = nn.Sequential(*layers)
        else:
            raise ValueError(f"Unknown decoder kind {kind!r}; use 'mlp' or 'conv'.")

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        return self.net(code).reshape(-1, *self.image_shape)


def reparameterize(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """A sample c = mu + sigma * eps, eps ~ N(0, I): differentiable in mu and sigma."""
    return mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)


def to_signed(x: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] to the [-1, 1] range the networks see."""
    return 2.0 * x - 1.0


class Critic(nn.Module):
    """T(v): two logits, class 0 for samples of a joint distribution, class 1 for samples of the
    product of its marginals (made by shuffling across the batch). At its optimum
    T_0(v) - T_1(v) = log p(v) / prod p(v_k), the log density ratio whose mean is the mutual
    information or total correlation between the parts (:func:`disentangle.losses.critic_loss`,
    :func:`disentangle.losses.tc_density_ratio`). ``layers`` hidden layers of ``hidden``
    LeakyReLU(0.2) units. The one critic of the book: DisenIB's I(S; T), FactorVAE's and
    TC-GAN's total correlation."""

    def __init__(self, inputs: int, hidden: int = 256, layers: int = 3):
        super().__init__()
        sizes = [inputs] + [hidden] * layers + [2]
        blocks: list[nn.Module] = []
        for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            blocks.append(nn.Linear(a, b))
            if k < len(sizes) - 2:
                blocks.append(nn.LeakyReLU(0.2))
        self.net = nn.Sequential(*blocks)

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        return self.net(values)

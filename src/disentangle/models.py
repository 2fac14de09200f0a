"""Networks: Gaussian encoders (MLP and convolutional), decoders, the linear classifier on A, and
the supervised models of the book: DisTIB, and the baselines it is compared against, VIB and
DisenIB (the two-step method is DisTIB with the reconstruction's gradient stopped at A); the VAE
of the two-level GAN's baselines; and the GAN's generator and discriminator.

Every model takes images in [0, 1] and maps them to [-1, 1] on entry, the input range of the
DisenIB robustness protocol, so that an FGSM step of size eps means what it means in the papers.
"""

from __future__ import annotations

import math
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


class TwoCodes(nn.Module):
    """What the two-code models (DisTIB, the two-step method, DisenIB) share for evaluation: a
    label code read by a linear ``classifier`` and a second code, ``encode`` giving both from an
    image, ``decode`` an image from both, and ``swap`` crossing them between images."""

    image_shape: tuple[int, ...]
    classifier: nn.Linear

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def decode(self, a: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

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


class DisenIB(TwoCodes):
    """The disentangled information bottleneck (Pan, Niu, Zhang and Zhang, AAAI 2021), which
    maximises I(T; Y) + I(X; S, Y) - I(S; T) with a label code T and a style code S.

    Both encoders are deterministic; the codes the objective sees are t + N(0, 1) and
    s + N(0, 0.1^2) (:data:`NOISE`), so that p(t | x) and p(s | x) are Gaussians of fixed variance
    and the book's estimators read them as any other encoder's. A linear classifier reads T; the
    decoder reconstructs x from S and a learned embedding of the label y (not from T); a critic
    on (t, s) pairs estimates I(S; T) by the density-ratio trick (:func:`objectives.disenib_loss`).
    Here A names T and Z names S, so that the book's evaluation reads both models alike; a swap
    decodes the Z of one image with the label that the A of another is classified as."""

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
        likelihood: str = "gaussian",
        width: int = 32,
    ):
        super().__init__()
        if likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"Unknown likelihood {likelihood!r}; use 'bernoulli' or 'gaussian'.")
        self.image_shape = tuple(image_shape)
        self.num_classes, self.likelihood = num_classes, likelihood
        options = dict(hidden=hidden, depth=depth, activation=activation)
        body_a, size = encoder_body(image_shape, encoder, width=width, **options)
        body_z, _ = encoder_body(image_shape, encoder, width=width, **options)
        self.encoder_a = nn.Sequential(body_a, nn.Linear(size, dim_a))
        self.encoder_z = nn.Sequential(body_z, nn.Linear(size, dim_z))
        self.embedding = nn.Embedding(num_classes, dim_a)
        self.decoder = Decoder(dim_z + dim_a, image_shape, kind=decoder, **options)
        self.classifier = nn.Linear(dim_a, num_classes)
        self.critic = PairCritic(dim_a + dim_z)
        # Counts training batches, so that the warm-up survives a resume from a checkpoint.
        self.register_buffer("batches_seen", torch.zeros((), dtype=torch.long))

    def posteriors(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The codes' means and their fixed log-variances (of the noise added in training)."""
        signed = to_signed(x)
        mean_a, mean_z = self.encoder_a(signed), self.encoder_z(signed)
        out = {"mean_a": mean_a, "mean_z": mean_z}
        for name, mean in (("a", mean_a), ("z", mean_z)):
            out[f"log_var_{name}"] = torch.full_like(mean, 2 * math.log(self.NOISE[name]))
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.posteriors(x)
        a = out["mean_a"] + self.NOISE["a"] * torch.randn_like(out["mean_a"])
        z = out["mean_z"] + self.NOISE["z"] * torch.randn_like(out["mean_z"])
        return {
            **out, "a": a, "z": z,
            "logits": self.classifier(a),
            "reconstruction": self.decoder(torch.cat([z, self.embedding(y)], 1)),
        }

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The codes' means, T and S."""
        signed = to_signed(x)
        return self.encoder_a(signed), self.encoder_z(signed)

    def decode(self, a: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] decoded from the style code ``z`` and the label that ``a`` is
        classified as."""
        label = self.classifier(a).argmax(1)
        return _to_pixels(self.decoder(torch.cat([z, self.embedding(label)], 1)), self.likelihood)


class PairCritic(nn.Module):
    """T(t, s): two logits, class 0 for code pairs drawn together, class 1 for pairs whose T was
    permuted across the batch. At its optimum T_0 - T_1 = log p(t, s) / p(t) p(s), the density
    ratio whose mean is I(S; T)."""

    def __init__(self, code_dim: int, hidden: int = 256):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(code_dim, hidden), nn.LeakyReLU(0.2),
            nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),
            nn.Linear(hidden, 2),
        )

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        return self.net(pairs)


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


class VAE(nn.Module):
    """The VAE family's network: q(c | x) = N(mu(x), diag sigma^2(x)) by the conv encoder of the
    supervised models, and a conv decoder of Bernoulli logits p(x | c), prior N(0, I).
    ``forward`` returns ``mean``, ``log_var``, a reparameterised ``sample`` and the decoder's
    ``logits``. ``steps_seen`` counts training batches, in the checkpoint with the weights, for
    objectives that change over training (AnnealedVAE's capacity)."""

    def __init__(self, image_shape: Sequence[int], latent_dim: int, width: int = 32,
                 hidden: int = 256):
        super().__init__()
        self.encoder = GaussianEncoder(image_shape, latent_dim, kind="conv", hidden=hidden,
                                       width=width)
        self.decoder = Decoder(latent_dim, image_shape, kind="conv", hidden=hidden)
        self.register_buffer("steps_seen", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        mean, log_var = self.encoder(to_signed(x))
        sample = reparameterize(mean, log_var)
        return {"mean": mean, "log_var": log_var, "sample": sample,
                "logits": self.decoder(sample)}

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior means: the codes the metrics score (disentanglement_lib's convention)."""
        return self.encoder(to_signed(x))[0]

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Pixel probabilities of the decoder's mean image for ``codes``."""
        return torch.sigmoid(self.decoder(codes))


# --- The GAN of the two-level latent space -------------------------------------------------------

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

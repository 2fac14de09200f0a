"""The supervised family's settings: DisTIB and the baselines it is compared against."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from disentangle.data.registry import DATASETS, LABELLED
from disentangle.settings import Settings, SettingsError

#: Convolutions need images of these sides.
CONVOLVABLE = (28, 32, 64)


#: The DisTIB paper's own configuration (methods.md): encoders of three hidden layers of LeakyReLU
#: units with separate networks for the mean and the variance, a unit-variance Gaussian decoder on
#: the terms as written (no reconstruction weight), 16-dimensional codes, joint training, and one
#: beta on the paper's scale [0, 1]. The paper's layers are 4096 units wide; the smoke and cpu
#: profiles keep 128 and 256 (chapter 05's table of departures).
PAPER = {
    "all": {"encoder": "mlp", "decoder": "mlp", "depth": 3, "activation": "leaky_relu",
            "separate": True, "likelihood": "gaussian", "reconstruction_weight": 1.0,
            "dim_a": 16, "dim_z": 16, "beta": 0.1},
    "smoke": {"hidden": 128},
    "cpu": {"hidden": 256},
    "gpu": {"hidden": 4096},
}


@dataclass(frozen=True)
class SupervisedSettings(Settings):
    """A run of DisTIB or of a baseline it is compared against: the two-step method (``twostep``:
    DisTIB with the reconstruction's gradient stopped at A), VIB and DisenIB. The data and label,
    the objective's weights (beta on the compression terms, the reconstruction's weight), the
    networks and how long it trains.

    With the reconstruction weighted by w, the trained bound is -(w - beta) I(X; A,Z) - I(A; Y)
    + beta I(A; Z) up to constants, so the paper's beta is beta / w (:meth:`paper_beta`); the
    ``paper`` preset has w = 1. A Gaussian decoder of variance sigma^2 weights the squared error by
    1 / (2 sigma^2): w = 1 / sigma^2 against the unit-variance decoder. ``depth`` hidden layers of
    ``hidden`` units make an MLP encoder; ``separate`` gives the variance its own network;
    ``activation`` is that of every layer. ``train_size`` trains on the first that many images of
    the profile's training set (drawn by the seed, so the sizes a seed trains on are nested and
    every model of that seed sees the same ones); None trains on all of it."""

    MODELS: ClassVar[tuple[str, ...]] = ("distib", "twostep", "vib", "disenib")
    CHOICES: ClassVar[dict[str, tuple]] = {
        "data": LABELLED,
        "encoder": ("conv", "mlp"),
        "decoder": ("conv", "mlp"),
        "activation": ("relu", "leaky_relu", "elu"),
        "likelihood": ("bernoulli", "gaussian"),
    }
    SIZES: ClassVar[dict[str, dict]] = {
        "smoke": {"steps": 150, "batch_size": 64, "encoder": "mlp", "hidden": 128},
        "cpu": {"steps": 2000, "batch_size": 128},
        "gpu": {"steps": 6000, "batch_size": 1024, "width": 32, "hidden": 512, "decoder": "conv"},
    }
    PRESETS: ClassVar[dict[str, dict[str, dict]]] = {"paper": PAPER}
    UNUSED: ClassVar[dict[str, tuple[str, ...]]] = {
        "vib": ("dim_z", "decoder", "likelihood", "reconstruction_weight"),
        "disenib": ("beta", "separate", "likelihood", "reconstruction_weight"),
    }
    UNUSED_WHY: ClassVar[dict[str, str]] = {
        "vib": "VIB has one code and no decoder.",
        "disenib": "DisenIB's encoders are deterministic with fixed noise (no KL term, no "
                   "variance network), and it weighs its reconstruction as its reference code "
                   "does (supervised.objectives.DISENIB).",
    }
    model: str = "distib"
    data: str = "dsprites-style"
    label: str | None = None
    train_size: int | None = None
    beta: float = 1e-3
    reconstruction_weight: float = 0.005
    dim_a: int = 8
    dim_z: int = 8
    encoder: str = "conv"
    decoder: str = "mlp"
    width: int = 16
    hidden: int = 256
    depth: int = 2
    separate: bool = False
    activation: str = "relu"
    likelihood: str = "bernoulli"
    steps: int = 2000
    batch_size: int = 128
    lr: float = 2e-3
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.label is None:
            object.__setattr__(self, "label", DATASETS[self.data].label)
        side = DATASETS[self.data].side
        for name in ("encoder", "decoder"):
            if getattr(self, name) == "conv" and side not in CONVOLVABLE:
                raise SettingsError(
                    f"Setting {name}='conv' needs images of {', '.join(map(str, CONVOLVABLE))} "
                    f"pixels; {self.data} has {side} x {side}. Set {name}=mlp."
                )
        if self.beta < 0 or self.lr <= 0 or min(self.dim_a, self.dim_z, self.depth) < 1:
            raise SettingsError("Settings beta >= 0, lr > 0, dim_a >= 1, dim_z >= 1 and "
                                "depth >= 1 are needed.")
        if self.train_size is not None and self.train_size < self.batch_size:
            raise SettingsError(f"Setting train_size={self.train_size} is below one batch "
                                f"({self.batch_size}): set train_size >= batch_size.")
        if self.reconstruction_weight <= 0:
            raise SettingsError(f"Setting reconstruction_weight={self.reconstruction_weight} "
                                "must be > 0.")

    @property
    def paper_beta(self) -> float | None:
        """beta on the DisTIB paper's scale, beta / w (None for models without that beta)."""
        if self.model in ("distib", "twostep"):
            return self.beta / self.reconstruction_weight
        return None

    @classmethod
    def data_defaults(cls, data: str) -> dict:
        small = data in DATASETS and DATASETS[data].side not in CONVOLVABLE
        return {"encoder": "mlp", "decoder": "mlp"} if small else {}

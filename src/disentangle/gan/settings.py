"""The GAN family's settings: InfoGAN and TC-GAN."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from disentangle.data.registry import GROUND_TRUTH
from disentangle.settings import Settings, SettingsError

#: The reference settings' information weight and TC weights per estimator (methods.md: 0.01..0.02
#: on the information term, 1e-3..3e-2 on the minibatch TC estimate, 1e-5..1e-4 on the density
#: ratio). TC-GAN's default TC weight keeps the reference ratio to the run's information weight.
REFERENCE_INFO_WEIGHT = 0.02
TC_WEIGHTS = {"mws": 1e-2, "drt": 1e-4}


@dataclass(frozen=True)
class GanSettings(Settings):
    """An InfoGAN or TC-GAN run. Defaults are the reference settings for dSprites (methods.md): 5
    noise and 5 continuous codes, Adam(0.5, 0.999), lr 1e-3 for G and Q and 2e-3 for D, batch 64;
    but the information term (Q's Gaussian NLL of the codes) is weighted 1, not the reference's
    0.02 (a departure the two-level GAN chapter states with its reason). ``tc_weight=None`` takes
    TC-GAN's penalty at the reference ratio to the information weight (:data:`TC_WEIGHTS` x
    ``info_weight`` / :data:`REFERENCE_INFO_WEIGHT`), and 0 for InfoGAN. ``aligned`` names factors
    that the first codes are taught on ``labelled`` images. The density-ratio estimator T is the
    official TC-GAN code's: ``critic_layers`` = 5 hidden layers of ``critic_hidden`` = 1000
    units, Adam(0.5, 0.9) at ``lr_t`` = 1e-3."""

    MODELS: ClassVar[tuple[str, ...]] = ("infogan", "tcgan")
    MAY_BE_ZERO: ClassVar[tuple[str, ...]] = ("seed", "labelled", "noise_dim")
    CHOICES: ClassVar[dict[str, tuple]] = {
        "data": GROUND_TRUTH,
        "estimator": ("mws", "drt"),
        "resolution": (28, 32, 64),
    }
    SIZES: ClassVar[dict[str, dict]] = {
        "smoke": {"steps": 30, "batch_size": 32, "resolution": 32},
        "cpu": {"steps": 2000, "batch_size": 64, "resolution": 32},
        "gpu": {"steps": 20000, "batch_size": 512, "resolution": 64},
    }

    model: str = "tcgan"
    data: str = "dsprites-style"
    estimator: str = "mws"
    noise_dim: int = 5
    code_dim: int = 5
    categorical: tuple[int, ...] = ()
    info_weight: float = 1.0
    tc_weight: float | None = None
    resolution: int = 64
    steps: int = 3000
    batch_size: int = 64
    lr_g: float = 1e-3
    lr_d: float = 2e-3
    lr_t: float = 1e-3
    critic_hidden: int = 1000
    critic_layers: int = 5
    aligned: tuple[str, ...] = ()
    labelled: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.tc_weight is None:
            weight = (TC_WEIGHTS[self.estimator] * self.info_weight / REFERENCE_INFO_WEIGHT
                      if self.model == "tcgan" else 0.0)
            object.__setattr__(self, "tc_weight", weight)
        if self.model == "infogan" and self.tc_weight:
            raise SettingsError("InfoGAN has no TC penalty; train tcgan to set tc_weight.")
        if len(self.aligned) > self.code_dim or (self.aligned and self.labelled < 1):
            raise SettingsError(
                f"Aligning {len(self.aligned)} codes with factors needs at most code_dim "
                f"({self.code_dim}) of them and some labelled images (labelled={self.labelled})."
            )

    @classmethod
    def data_defaults(cls, data: str) -> dict:
        # Styled digits: 28-pixel images, and the digit as a categorical code of ten classes.
        return {"resolution": 28, "categorical": (10,)} if data == "styled-digits" else {}

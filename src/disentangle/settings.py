"""One settings record per model family: everything that changes what a run trains or how it is
evaluated, with defaults by profile, checked on construction, and serialisable.

- :class:`SupervisedSettings` for DisTIB and its baselines (``python -m disentangle train
  distib|twostep|vib|disenib``);
- :class:`GanSettings` for InfoGAN and TC-GAN (``train infogan|tcgan``);
- :class:`VaeSettings` for the VAE family, Table 1's baselines (``train vae|betavae|btcvae|
  factorvae|annealedvae``).

A run is ``Family.for_profile(profile, model=..., data=..., seed=..., **overrides)``: the profile's
sizes, then what the data imposes (an 8 x 8 image has no room for convolutions, styled digits give
the GAN a categorical code), then a named preset if one is asked (``paper``: the DisTIB paper's
configuration), then the overrides. Any setting can be given on the command line as
``--set NAME=VALUE`` (:func:`parse_assignments`), so a new experiment needs a field here and
nothing else: no flag, no folder suffix, no hand-written comparison. The run store
(:mod:`disentangle.runs`) names a run's folder after the settings that differ from the profile's.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar

from disentangle import config
from disentangle.data.labelled import LABELLED_DATASETS, NATURAL_LABEL


class SettingsError(ValueError):
    """A setting that does not exist, has the wrong type or an invalid value."""


#: Image side of each data set a model can be trained on (convolutions need 28, 32 or 64).
IMAGE_SIDE = {
    "dsprites-style": 64,
    "dsprites-style-upright": 64,
    "dsprites-style-tied": 64,
    "styled-digits": 28,
    "digits": 8,
    "mnist": 28,
    "mnist-5k": 28,
    "fashion-mnist": 28,
}
CONVOLVABLE = (28, 32, 64)


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError(text)


def _kinds(annotation: Any) -> tuple[Any, ...]:
    """The member types of ``X | None`` (or of a plain type)."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return typing.get_args(annotation)
    return (annotation,)


def _describe(annotation: Any) -> str:
    names = []
    for kind in _kinds(annotation):
        if kind is type(None):
            names.append("none")
        elif typing.get_origin(kind) is tuple:
            names.append(f"comma-separated {typing.get_args(kind)[0].__name__}s")
        else:
            names.append(kind.__name__)
    return " or ".join(names)


def _coerce(value: Any, annotation: Any) -> Any:
    """``value`` as the field's type (an int where a float is asked, a list where a tuple is), or
    ``ValueError``. Strings are parsed only by :func:`_parse`: here a string is a string."""
    for kind in _kinds(annotation):
        if kind is type(None) and value is None:
            return None
        if kind is bool and isinstance(value, bool):
            return value
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if kind is str and isinstance(value, str):
            return value
        if typing.get_origin(kind) is tuple and isinstance(value, (tuple, list)):
            member = typing.get_args(kind)[0]
            if all(isinstance(v, member) and not isinstance(v, bool) for v in value):
                return tuple(value)
    raise ValueError(value)


def _parse(text: str, annotation: Any) -> Any:
    """The value a command-line string stands for, for a field of type ``annotation``."""
    for kind in _kinds(annotation):
        try:
            if kind is type(None):
                if text.strip().lower() == "none":
                    return None
            elif kind is bool:
                return _parse_bool(text)
            elif typing.get_origin(kind) is tuple:
                member = typing.get_args(kind)[0]
                parts = [p.strip() for p in text.split(",") if p.strip()]
                return tuple(member(p) for p in parts)
            elif kind in (int, float, str):
                return kind(text)
        except ValueError:
            continue
    raise ValueError(text)


@dataclass(frozen=True)
class Settings:
    """The behaviour every family's settings share; subclasses are frozen dataclasses whose fields
    are the settings, with ``CHOICES`` (field -> valid values) and ``SIZES`` (profile -> the
    fields it sizes)."""

    MODELS: ClassVar[tuple[str, ...]] = ()
    CHOICES: ClassVar[dict[str, tuple]] = {}
    SIZES: ClassVar[dict[str, dict]] = {}
    #: Named sets of settings: preset -> {"all": settings, profile: settings}.
    PRESETS: ClassVar[dict[str, dict[str, dict]]] = {}
    #: Settings a model of the family does not have (model -> names): only their defaults pass,
    #: and ``UNUSED_WHY[model]`` says why.
    UNUSED: ClassVar[dict[str, tuple[str, ...]]] = {}
    UNUSED_WHY: ClassVar[dict[str, str]] = {}

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            try:
                object.__setattr__(self, item.name, _coerce(value, hints[item.name]))
            except ValueError:
                raise SettingsError(
                    f"Setting {item.name}={value!r} is not of the right type: give "
                    f"{_describe(hints[item.name])}."
                ) from None
        choices = {"model": self.MODELS, **self.CHOICES}
        for name, valid in choices.items():
            if getattr(self, name) not in valid:
                raise SettingsError(
                    f"Setting {name}={getattr(self, name)!r} is not valid; valid values are "
                    f"{', '.join(map(str, valid))}."
                )
        if self.seed < 0:
            raise SettingsError(f"Setting seed={self.seed} must be a non-negative integer.")
        if self.steps < 0 or self.batch_size < 1:
            raise SettingsError(
                f"Settings steps={self.steps} and batch_size={self.batch_size} must be >= 0 "
                "and >= 1."
            )

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(item.name for item in dataclasses.fields(cls))

    @classmethod
    def data_defaults(cls, data: str) -> dict:
        """Settings the data set imposes unless asked otherwise (none by default)."""
        return {}

    @classmethod
    def preset(cls, name: str, model: str, profile: str) -> dict:
        """The settings of preset ``name`` for ``model`` in ``profile``, less those the model does
        not have."""
        if name not in cls.PRESETS:
            valid = ", ".join(cls.PRESETS) or "none for this family"
            raise SettingsError(f"Unknown preset {name!r}; valid presets are {valid}.")
        values = cls.PRESETS[name]
        chosen = {**values["all"], **values.get(config.resolve_profile(profile), {})}
        return {k: v for k, v in chosen.items() if k not in cls.UNUSED.get(model, ())}

    @classmethod
    def for_profile(cls, profile: str, preset: str | None = None, **overrides: Any) -> Settings:
        """The profile's sizes, then the data's defaults, then the ``preset``'s settings (see
        :data:`PRESETS`), then ``overrides`` (any field by name; an unknown name raises
        :class:`SettingsError` listing the valid ones, and so does a setting the model does not
        have, unless at its default)."""
        model = overrides.get("model", cls.MODELS[0])
        check_names(cls, overrides, model)
        data = overrides.get("data", cls.__dataclass_fields__["data"].default)
        sized = {**cls.SIZES[config.resolve_profile(profile)], **cls.data_defaults(data)}
        for name in cls.UNUSED.get(model, ()):
            default = sized.get(name, cls.__dataclass_fields__[name].default)
            if name in overrides and overrides[name] != default:
                raise SettingsError(f"Setting {name!r} has no meaning for {model}: "
                                    f"{cls.UNUSED_WHY[model]}")
        if preset is not None:
            overrides = {**cls.preset(preset, model, profile), **overrides}
        chosen = {**sized, **overrides}
        if not config.learns(profile):
            # A dry run of the gpu profile keeps its networks and caps how long anything trains,
            # whatever a chapter asks for.
            chosen["steps"] = min(chosen["steps"], config.DRY_RUN_STEPS)
            chosen["batch_size"] = min(chosen["batch_size"], config.DRY_RUN_BATCH)
        return cls(**chosen)


    def as_dict(self) -> dict:
        """Every setting, JSON-ready (tuples as lists)."""
        return {name: (list(v) if isinstance(v, tuple) else v)
                for name, v in dataclasses.asdict(self).items()}

    def differing(self, profile: str) -> dict:
        """The settings that differ from the profile's defaults for this model, data and seed:
        what names a run apart from the profile's own run of them."""
        base = type(self).for_profile(profile, model=self.model, data=self.data, seed=self.seed)
        ours, theirs = self.as_dict(), base.as_dict()
        return {name: value for name, value in ours.items() if theirs[name] != value}


def check_names(family: type[Settings], overrides: dict, model: str) -> None:
    """Refuse a name that is no setting of ``family``, naming the family it belongs to if any."""
    for name in overrides:
        if name in family.names():
            continue
        owners = [other for other in FAMILIES.values() if name in other.names()]
        if owners:
            raise SettingsError(
                f"Setting {name!r} belongs to {', '.join(owners[0].MODELS)}, not to {model}."
            )
        raise SettingsError(
            f"Unknown setting {name!r} for {model}; valid ones are {', '.join(family.names())}."
        )


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
    ``activation`` is that of every layer."""

    MODELS: ClassVar[tuple[str, ...]] = ("distib", "twostep", "vib", "disenib")
    CHOICES: ClassVar[dict[str, tuple]] = {
        "data": LABELLED_DATASETS,
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
        "disenib": ("beta", "separate"),
    }
    UNUSED_WHY: ClassVar[dict[str, str]] = {
        "vib": "VIB has one code and no decoder.",
        "disenib": "DisenIB's encoders are deterministic with fixed noise: no KL term, no "
                   "variance network.",
    }
    model: str = "distib"
    data: str = "dsprites-style"
    label: str | None = None
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
            object.__setattr__(self, "label", NATURAL_LABEL.get(self.data, "label"))
        side = IMAGE_SIDE[self.data]
        for name in ("encoder", "decoder"):
            if getattr(self, name) == "conv" and side not in CONVOLVABLE:
                raise SettingsError(
                    f"Setting {name}='conv' needs images of {', '.join(map(str, CONVOLVABLE))} "
                    f"pixels; {self.data} has {side} x {side}. Set {name}=mlp."
                )
        if self.beta < 0 or self.lr <= 0 or min(self.dim_a, self.dim_z, self.depth) < 1:
            raise SettingsError("Settings beta >= 0, lr > 0, dim_a >= 1, dim_z >= 1 and "
                                "depth >= 1 are needed.")
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
        small = IMAGE_SIDE.get(data) not in CONVOLVABLE
        return {"encoder": "mlp", "decoder": "mlp"} if small else {}


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
    0.02, at which InfoGAN learns no code in the cpu profile's budget (chapter 10's table of
    departures). ``tc_weight=None`` takes TC-GAN's penalty at the reference ratio to the
    information weight (:data:`TC_WEIGHTS` x ``info_weight`` / :data:`REFERENCE_INFO_WEIGHT`), and
    0 for InfoGAN. ``aligned`` names factors that the first codes are taught on ``labelled``
    images."""

    MODELS: ClassVar[tuple[str, ...]] = ("infogan", "tcgan")
    CHOICES: ClassVar[dict[str, tuple]] = {
        "data": ("dsprites-style", "dsprites-style-tied", "styled-digits"),
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
    lr_t: float = 1e-4
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


#: The weights each VAE of Table 1 uses unless set (methods.md gives the ranges of the large
#: studies: beta-VAE's beta in 1..16, FactorVAE's gamma in 10..100; AnnealedVAE's gamma 1000 with
#: a capacity of 5..25 nats). Chapter 10's departures table states the book's choices.
VAE_WEIGHTS = {
    "vae": {},
    "betavae": {"beta": 4.0},
    "btcvae": {"beta": 6.0},
    "factorvae": {"gamma": 30.0},
    "annealedvae": {"gamma": 1000.0, "capacity": 10.0},
}


@dataclass(frozen=True)
class VaeSettings(Settings):
    """A run of the VAE family, the two-level GAN paper's Table 1 baselines: the VAE, beta-VAE
    (``beta`` on the KL), beta-TCVAE (``beta`` on the total correlation alone), FactorVAE
    (``gamma`` on the density-ratio TC, its discriminator learning at ``lr_critic``) and
    AnnealedVAE (``gamma`` on |KL - C|, C raised to ``capacity`` nats). The conv encoder and
    decoder of the book's supervised models (``width`` channels, ``hidden`` units), a Bernoulli
    decoder, ``latent_dim`` codes, on the GAN's ground-truth data at ``resolution``. A weight the
    model does not use stays None."""

    MODELS: ClassVar[tuple[str, ...]] = tuple(VAE_WEIGHTS)
    CHOICES: ClassVar[dict[str, tuple]] = {
        "data": GanSettings.CHOICES["data"],
        "resolution": (28, 32, 64),
    }
    SIZES: ClassVar[dict[str, dict]] = {
        "smoke": {"steps": 30, "batch_size": 32, "resolution": 32},
        "cpu": {"steps": 2000, "batch_size": 64, "resolution": 32},
        "gpu": {"steps": 30000, "batch_size": 256, "resolution": 64, "lr": 2e-4},
    }
    UNUSED: ClassVar[dict[str, tuple[str, ...]]] = {
        model: tuple(name for name in ("beta", "gamma", "capacity") if name not in weights)
        + (() if model == "factorvae" else ("lr_critic",))
        for model, weights in VAE_WEIGHTS.items()
    }
    UNUSED_WHY: ClassVar[dict[str, str]] = {
        "vae": "the VAE weighs its KL by 1.",
        "betavae": "beta-VAE weighs its KL by beta.",
        "btcvae": "beta-TCVAE weighs its total correlation by beta.",
        "factorvae": "FactorVAE weighs its density-ratio total correlation by gamma (its "
                     "discriminator learns at lr_critic).",
        "annealedvae": "AnnealedVAE weighs |KL - C| by gamma, C raised to capacity.",
    }

    model: str = "vae"
    data: str = "dsprites-style"
    latent_dim: int = 10
    beta: float | None = None
    gamma: float | None = None
    capacity: float | None = None
    width: int = 32
    hidden: int = 256
    resolution: int = 64
    steps: int = 3000
    batch_size: int = 64
    lr: float = 1e-3
    lr_critic: float = 1e-4
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        for name, value in VAE_WEIGHTS[self.model].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        weights = [getattr(self, name) for name in VAE_WEIGHTS[self.model]]
        if any(w < 0 for w in weights) or self.lr <= 0 or self.latent_dim < 1:
            raise SettingsError(f"Settings lr > 0, latent_dim >= 1 and weights >= 0 are needed; "
                                f"got {self.model} with {self.as_dict()}.")

    @classmethod
    def data_defaults(cls, data: str) -> dict:
        return {"resolution": 28} if data == "styled-digits" else {}


FAMILIES: dict[str, type[Settings]] = {
    **dict.fromkeys(SupervisedSettings.MODELS, SupervisedSettings),
    **dict.fromkeys(GanSettings.MODELS, GanSettings),
    **dict.fromkeys(VaeSettings.MODELS, VaeSettings),
}


def family(model: str) -> type[Settings]:
    """The settings class of ``model``."""
    if model not in FAMILIES:
        raise SettingsError(f"Unknown model {model!r}; valid models are {', '.join(FAMILIES)}.")
    return FAMILIES[model]


def parse_assignments(model: str, assignments: list[str]) -> dict:
    """``["beta=0.01", "activation=leaky_relu"]`` as typed overrides for ``model``'s settings: an
    unknown name, a setting of another family or a value of the wrong type raises
    :class:`SettingsError` naming it."""
    kind = family(model)
    hints = typing.get_type_hints(kind)
    parsed: dict = {}
    for text in assignments:
        name, sep, value = text.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise SettingsError(f"--set takes NAME=VALUE; got {text!r}.")
        check_names(kind, {name: None}, model)
        try:
            parsed[name] = _parse(value, hints[name])
        except ValueError:
            raise SettingsError(
                f"Setting {name}={value!r} is not of the right type: give {_describe(hints[name])}."
            ) from None
    return parsed

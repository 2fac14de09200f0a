"""What every model family's settings share: a frozen, typed record of everything that changes what
a run trains or how it is evaluated, with defaults by profile, checked on construction, and
serialisable. Each family's own record is in its package (``supervised.settings``,
``gan.settings``, ``vae.settings``); :mod:`disentangle.registry` finds a model's.

A run is ``Kind.for_profile(profile, model=..., data=..., seed=..., **overrides)``: the profile's
sizes, then what the data imposes (an 8 x 8 image has no room for convolutions, styled digits give
the GAN a categorical code), then a named preset if one is asked (``paper``: the DisTIB paper's
configuration), then the overrides. Any setting can be given on the command line as
``--set NAME=VALUE`` (:func:`parse_assignments`), so a new experiment needs a field and nothing
else: no flag, no folder suffix, no hand-written comparison. The run store
(:mod:`disentangle.runs`) names a run's folder after the settings that differ from the profile's.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar

from disentangle import config


class SettingsError(ValueError):
    """A setting that does not exist, has the wrong type or an invalid value."""


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
    #: Integer settings that may be 0; every other one counts or sizes something and is >= 1.
    MAY_BE_ZERO: ClassVar[tuple[str, ...]] = ("seed",)

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
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            numbers = value if isinstance(value, tuple) else (value,)
            floats = [v for v in numbers if isinstance(v, float)]
            if any(not math.isfinite(v) for v in floats):
                raise SettingsError(f"Setting {item.name}={value!r} must be a finite number.")
            least = 0 if item.name in self.MAY_BE_ZERO else 1
            if isinstance(value, int) and not isinstance(value, bool) and value < least:
                raise SettingsError(f"Setting {item.name}={value} must be an integer >= {least}"
                                    + (" (a count or a size)." if least else "."))

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


def check_names(kind: type[Settings], overrides: dict, model: str) -> None:
    """Refuse a name that is no setting of ``kind``, listing the valid ones."""
    for name in overrides:
        if name not in kind.names():
            raise SettingsError(
                f"Unknown setting {name!r} for {model}; valid ones are {', '.join(kind.names())}."
            )


def parse_assignments(kind: type[Settings], model: str, assignments: list[str]) -> dict:
    """``["beta=0.01", "activation=leaky_relu"]`` as typed overrides for ``model``'s settings
    ``kind``: an unknown name or a value of the wrong type raises :class:`SettingsError` naming
    it."""
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

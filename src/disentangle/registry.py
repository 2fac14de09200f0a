"""The model families the library knows, one line each, and what the command line, the run store's
users and the studies ask of them by a model's name. Adding a family is a package with a
:class:`~disentangle.family.Family` record and one line in :data:`FAMILIES`; nothing else names a
family."""

from __future__ import annotations

from typing import Any

from disentangle import gan, supervised, vae
from disentangle.family import Family
from disentangle.settings import Settings, SettingsError
from disentangle.settings import parse_assignments as parse_for_kind

FAMILIES: tuple[Family, ...] = (
    supervised.FAMILY,
    gan.FAMILY,
    vae.FAMILY,
)


def models() -> dict[str, Family]:
    """Every model name, with its family."""
    return {model: fam for fam in FAMILIES for model in fam.models}


def family_of(model: str) -> Family:
    """The family of ``model``; an unknown name lists the valid ones."""
    known = models()
    if model not in known:
        raise SettingsError(f"Unknown model {model!r}; valid models are {', '.join(known)}.")
    return known[model]


def check_names(model: str, names: Any) -> None:
    """Refuse a setting ``model`` does not have, naming the family it belongs to if any."""
    kind = family_of(model).settings
    for name in names:
        if name in kind.names():
            continue
        owners = [fam for fam in FAMILIES if name in fam.settings.names()]
        if owners:
            raise SettingsError(
                f"Setting {name!r} belongs to {', '.join(owners[0].models)}, not to {model}."
            )
        raise SettingsError(
            f"Unknown setting {name!r} for {model}; valid ones are {', '.join(kind.names())}."
        )


def parse_assignments(model: str, assignments: list[str]) -> dict:
    """``["beta=0.01", "activation=leaky_relu"]`` as typed overrides for ``model``'s settings (see
    :func:`disentangle.settings.parse_assignments`), a setting of another family named as such."""
    check_names(model, [text.partition("=")[0].strip().replace("-", "_")
                        for text in assignments if "=" in text])
    return parse_for_kind(family_of(model).settings, model, assignments)


def build_settings(model: str, profile: str, preset: str | None = None,
                   **overrides: Any) -> Settings:
    """``model``'s settings in ``profile`` (:meth:`Settings.for_profile`) with ``preset`` and
    ``overrides``, a setting of another family named as such."""
    check_names(model, [name for name in overrides if name not in ("model",)])
    return family_of(model).settings.for_profile(profile, preset, model=model, **overrides)

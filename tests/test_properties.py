"""Property tests: whatever a user types as a setting or writes into a study file, the answer is
a valid result or one error in the project's words (SettingsError, StudyError), never another
exception."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from disentangle import registry, studies
from disentangle.settings import SettingsError

MODELS = list(registry.models())
NAMES = sorted({name for fam in registry.FAMILIES for name in fam.settings.names()})
TEXT = st.text(string.printable, max_size=12)
VALUES = st.one_of(st.integers(-10**12, 10**12), st.floats(allow_nan=True), st.booleans(),
                   TEXT, st.lists(TEXT, max_size=3), st.none())
QUICK = settings(max_examples=40, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])


@QUICK
@given(model=st.sampled_from(MODELS), name=st.one_of(st.sampled_from(NAMES), TEXT), value=TEXT)
def test_a_typed_setting_is_parsed_or_refused_in_one_line(model, name, value):
    try:
        parsed = registry.parse_assignments(model, [f"{name}={value}"])
    except SettingsError as err:
        assert "\n" not in str(err).strip()
    else:
        assert len(parsed) == 1


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if value == value and abs(value) != float("inf") else '"nan"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if value is None:
        return '""'
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


@QUICK
@given(
    group=st.one_of(st.sampled_from(["a", "b-1", "../up", "/abs", ".hidden", "x" * 80]), TEXT),
    model=st.one_of(st.sampled_from(MODELS), TEXT),
    key=st.one_of(st.sampled_from(NAMES), TEXT),
    value=VALUES,
    seeds=st.one_of(st.integers(-5, 10**12), st.lists(st.integers(-3, 5), max_size=4), TEXT),
    metric=st.one_of(st.sampled_from(["accuracy_a", "mig", "fgsm_accuracy.0.1", "fgsm.0.1",
                                       "fgsm_survival.0.77"]), TEXT),
)
def test_a_study_file_is_valid_or_refused_in_one_line(tmp_path_factory, group, model, key,
                                                      value, seeds, metric):
    path = tmp_path_factory.mktemp("study") / "study.toml"
    path.write_text(
        f'profile = "smoke"\ndata = "digits"\nseeds = {_toml(seeds)}\n'
        f"metrics = [{_toml(metric)}]\n"
        f"[groups.{_toml(group)}]\nmodel = {_toml(model)}\n"
        f"set = {{ {_toml(key)} = {_toml(value)} }}\n"
        '[groups.other]\nmodel = "vib"\n'
        f'[[comparisons]]\na = {_toml(group)}\nb = "other"\nprimary = {_toml(metric)}\n'
    )
    try:
        study = studies.load_study(path)
    except studies.StudyError as err:
        assert str(err).startswith(str(path)) and "\n" not in str(err).strip()
    else:
        assert study.runs and all(studies.SAFE_NAME.fullmatch(run.group) for run in study.runs)

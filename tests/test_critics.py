"""A density-ratio critic that never learned marks its run: the rule, and the families that use
it."""

import pytest

from disentangle import critics, registry, train


def _terms(estimate: float, reference: float, steps: int = 40) -> dict[str, list[float]]:
    # a critic that learns late: its estimate starts at 0 and reaches ``estimate``
    return {"tc_drt": [0.0] * (steps // 2) + [estimate] * (steps // 2),
            "tc": [reference] * steps, "tc_mws": [reference] * steps,
            "total": [1.0] * steps}


def test_a_critic_far_below_the_minibatch_estimate_is_at_chance():
    assert critics.critic_at_chance(_terms(0.02, 6.0))  # the recorded FactorVAE's
    assert not critics.critic_at_chance(_terms(2.0, 6.0))  # a third of it: it learned
    # Only the last quarter counts: a critic that learned by then is not at chance.
    assert not critics.critic_at_chance(_terms(0.8, 6.0, steps=8))
    assert not critics.critic_at_chance({"total": [1.0]})  # no critic at all
    with pytest.raises(ValueError, match="empty"):
        critics.tail_mean([])


@pytest.mark.parametrize("model, reference", [("factorvae", "tc"), ("tcgan", "tc_mws")])
def test_families_with_a_critic_flag_it(model, reference):
    rule = registry.family_of(model).flags
    idle = train.History(steps=list(range(40)), terms=_terms(0.001, 0.5))
    learned = train.History(steps=list(range(40)), terms=_terms(0.3, 0.5))
    assert "critic_at_chance" in rule({}, idle)
    assert "critic_at_chance" not in rule({}, learned)

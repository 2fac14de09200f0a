"""Did a density-ratio critic learn? A diagnostic read from a run's logged training.

FactorVAE's discriminator and TC-GAN's density-ratio estimator (:class:`disentangle.nets.Critic`)
are classifiers trained beside the model to tell codes drawn together from codes shuffled apart;
their mean log-odds estimate the codes' total correlation (:func:`disentangle.losses.
tc_density_ratio`). A critic that cannot tell the two apart sits at a loss of ln 2 and estimates
about 0 whatever the codes hold, and a penalty built on it pushes on nothing. The run logs the
critic's estimate beside the minibatch-weighted estimate of the same codes (a biased estimator,
but one that needs no training); :func:`critic_at_chance` compares the two over the last quarter
of training. A run so marked tests its model with an idle penalty, not the method it is named
after.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

#: A critic is at chance when its estimate averages under this share of the minibatch estimate.
SHARE = 0.1


def tail_mean(values: Sequence[float], fraction: float = 0.25) -> float:
    """The mean of the last ``fraction`` of a logged series (at least one value)."""
    if not values:
        raise ValueError("The series is empty: nothing was logged.")
    return float(np.mean(values[-max(int(len(values) * fraction), 1):]))


def critic_at_chance(terms: Mapping[str, Sequence[float]], estimate: str = "tc_drt",
                     reference: str = "tc", share: float = SHARE) -> bool:
    """Whether the critic's TC estimate (logged term ``estimate``) averaged, over the last quarter
    of training, under ``share`` of the minibatch estimate of the same codes (term
    ``reference``). ``terms`` is a run's logged terms (``History.terms``, or a record's
    ``history["terms"]``); a run without both terms has no such critic: False."""
    if estimate not in terms or reference not in terms:
        return False
    return tail_mean(terms[estimate]) < share * tail_mean(terms[reference])

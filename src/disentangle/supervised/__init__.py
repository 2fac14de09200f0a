"""The supervised family: DisTIB (a label code A and a sample code Z) and the baselines it is
compared against, the two-step method, VIB and DisenIB. ``settings`` (what a run is),
``networks``, ``objectives`` (the bounds), ``training`` (data, model, step), ``evaluation`` (what
the codes hold, FGSM), ``family`` (the record the registry lists, and the entry points) and
``beta_scale`` (the beta the exact objective sees)."""

from disentangle.supervised.beta_scale import exact_beta, residual_variance
from disentangle.supervised.evaluation import (
    encode_test,
    evaluate_model,
    fgsm_rates,
    metric_names,
    probe,
    probe_table,
    swap_scores,
)
from disentangle.supervised.family import FAMILY, fit_model, load_or_train, run, settings_for
from disentangle.supervised.networks import VIB, DisenIB, DisTIB, TwoCodes
from disentangle.supervised.objectives import disenib_loss, distib_loss, vib_loss
from disentangle.supervised.settings import PAPER, SupervisedSettings
from disentangle.supervised.training import (
    DISENIB_SCHEDULE,
    build_model,
    disenib_step,
    loss_for,
    training_parts,
)

__all__ = [
    "DISENIB_SCHEDULE", "FAMILY", "PAPER", "VIB", "DisTIB", "DisenIB", "SupervisedSettings",
    "TwoCodes", "build_model", "disenib_loss", "disenib_step", "distib_loss", "encode_test",
    "evaluate_model", "exact_beta", "fgsm_rates", "fit_model", "load_or_train", "loss_for",
    "metric_names", "probe", "probe_table", "residual_variance", "run", "settings_for",
    "swap_scores", "training_parts", "vib_loss",
]

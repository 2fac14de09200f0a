"""The GAN family: InfoGAN and TC-GAN, the atomic level of the two-level latent space, and the
complex level built on it. ``settings``, ``networks``, ``objectives`` (InfoGAN's bound),
``training`` (the alternating step), ``complex_level`` and ``family`` (the record the registry
lists, scoring, and the entry point)."""

from disentangle.gan.complex_level import complex_level, measure, read_factors
from disentangle.gan.family import FAMILY, run
from disentangle.gan.networks import Discriminator, Generator, TwoLevelGAN
from disentangle.gan.objectives import code_entropy, infogan_bound
from disentangle.gan.settings import REFERENCE_INFO_WEIGHT, TC_WEIGHTS, GanSettings
from disentangle.gan.training import Optimizers, build_optimizers, gan_step, training_parts

MODELS = GanSettings.MODELS

__all__ = ["FAMILY", "MODELS", "REFERENCE_INFO_WEIGHT", "TC_WEIGHTS", "Discriminator",
           "GanSettings", "Generator", "Optimizers", "TwoLevelGAN", "build_optimizers",
           "code_entropy", "complex_level", "gan_step", "infogan_bound", "measure",
           "read_factors", "run", "training_parts"]

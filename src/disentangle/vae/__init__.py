"""The VAE family, the baselines of the two-level GAN paper's Table 1: the VAE, beta-VAE,
beta-TCVAE, FactorVAE and AnnealedVAE. ``settings``, ``networks``, ``objectives``, ``training``
and ``family`` (the record the registry lists, scoring, and the entry point)."""

from disentangle.vae.family import FAMILY, run
from disentangle.vae.networks import VAE
from disentangle.vae.objectives import vae_loss
from disentangle.vae.settings import VAE_WEIGHTS, VaeSettings
from disentangle.vae.training import capacity_at, training_parts

MODELS = VaeSettings.MODELS

__all__ = ["FAMILY", "MODELS", "VAE", "VAE_WEIGHTS", "VaeSettings", "capacity_at", "run",
           "training_parts", "vae_loss"]

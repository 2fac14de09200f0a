"""The VAE family's network (the baselines of the two-level GAN paper's Table 1)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from disentangle.nets import Critic, Decoder, GaussianEncoder, reparameterize, to_signed


class VAE(nn.Module):
    """The VAE family's network: q(c | x) = N(mu(x), diag sigma^2(x)) by the conv encoder of the
    supervised models, and a conv decoder of Bernoulli logits p(x | c), prior N(0, I).
    ``forward`` returns ``mean``, ``log_var``, a reparameterised ``sample`` and the decoder's
    ``logits``. ``steps_seen`` counts training batches, in the checkpoint with the weights, for
    objectives that change over training (AnnealedVAE's capacity). ``critic`` is FactorVAE's
    permutation discriminator, kept with the model so that a finished run can be asked whether it
    learned (:func:`disentangle.critics.diagnose`); it trains by its own optimizer only."""

    def __init__(self, image_shape: Sequence[int], latent_dim: int, width: int = 32,
                 hidden: int = 256, critic: Critic | None = None):
        super().__init__()
        self.encoder = GaussianEncoder(image_shape, latent_dim, kind="conv", hidden=hidden,
                                       width=width)
        self.decoder = Decoder(latent_dim, image_shape, kind="conv", hidden=hidden)
        self.critic = critic
        self.register_buffer("steps_seen", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        mean, log_var = self.encoder(to_signed(x))
        sample = reparameterize(mean, log_var)
        return {"mean": mean, "log_var": log_var, "sample": sample,
                "logits": self.decoder(sample)}

    def autoencoder_parameters(self) -> list[nn.Parameter]:
        """The encoder's and decoder's weights: what the ELBO's optimizer trains."""
        return [*self.encoder.parameters(), *self.decoder.parameters()]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior means: the codes the metrics score (disentanglement_lib's convention)."""
        return self.encoder(to_signed(x))[0]

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Pixel probabilities of the decoder's mean image for ``codes``."""
        return torch.sigmoid(self.decoder(codes))

"""Adversarial robustness with the DisenIB protocol: the fast gradient sign method (FGSM) on inputs
scaled to [-1, 1], attacking only the test points the model classifies correctly."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.nn import functional as F


def fgsm_accuracy(
    classify: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    labels: torch.Tensor,
    epsilons: Sequence[float] = (0.1, 0.2, 0.3),
    batch_size: int = 1024,
) -> dict[float, float]:
    """For each eps, the fraction of the correctly classified test images that stay correct after
    one FGSM step x' = clip(x + eps * sign(grad_x CE(classify(x), y)), -1, 1), with x the image in
    [-1, 1] (Goodfellow et al. 2015; the protocol of DisenIB and DisTIB).

    ``classify`` takes images in [0, 1], like every model of the book; the attack happens in the
    [-1, 1] range and is mapped back, so eps = 0.1 moves each pixel by 0.05 of the [0, 1] range.
    """
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels.")
    if any(eps < 0 for eps in epsilons):
        raise ValueError(f"FGSM step sizes must be >= 0; got {list(epsilons)}.")
    kept = {float(eps): 0 for eps in epsilons}
    correct_total = 0
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size]
        y = labels[start : start + batch_size]
        with torch.no_grad():
            correct = classify(x).argmax(1) == y
        x, y = x[correct], y[correct]
        correct_total += len(y)
        if not len(y):
            continue
        signed = (2 * x - 1).detach().requires_grad_(True)
        loss = F.cross_entropy(classify((signed + 1) / 2), y)
        (grad,) = torch.autograd.grad(loss, signed)
        with torch.no_grad():
            for eps in epsilons:
                attacked = (signed + eps * grad.sign()).clamp(-1, 1)
                kept[float(eps)] += int((classify((attacked + 1) / 2).argmax(1) == y).sum())
    if correct_total == 0:
        raise ValueError("The model classifies no test image correctly: nothing to attack.")
    return {eps: count / correct_total for eps, count in kept.items()}

"""Temperature scaling: one number that makes a model's scores mean what they say.

A network trained to separate classes is sure of itself by an arbitrary amount: its softmax scores can
sit anywhere between "squeezed towards 0.5" and "always 0 or 1".  Dividing the logits by a temperature
``T`` fitted on validation data (minimum negative log-likelihood) turns them into probabilities that
match how often the model is right (Guo et al., ICML 2017).  With two classes no decision at 0.5
changes.  With more, a temperature above 1 pulls every score towards 1/K, and a crack score the network
puts over the scan's threshold can fall under it (a three-class fine-tune on ten photos, wrong on its
few validation patches, fitted T = 10 and then called nothing crack): there the fit only sharpens.

The fit is a search over a fixed grid of temperatures, so that processes holding parts of the
validation set can add their losses up and all pick the same one.
"""

from __future__ import annotations

import torch
from torch import nn

# 0.1 ... 10, about 3% apart: finer than the fit's own uncertainty on a few thousand images.
TEMPERATURES = torch.logspace(-1, 1, 161, dtype=torch.float64)


def temperature_losses(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Summed negative log-likelihood of ``targets`` under ``softmax(logits / T)`` for every ``T`` of the grid."""
    scaled = logits.double()[None] / TEMPERATURES.to(logits.device)[:, None, None]  # (T, N, C)
    picked = scaled.gather(2, targets.view(1, -1, 1).expand(len(TEMPERATURES), -1, 1)).squeeze(2)
    return (torch.logsumexp(scaled, dim=2) - picked).sum(dim=1)


def best_temperature(losses: torch.Tensor, num_classes: int = 2) -> float:
    """The temperature of the grid with the least loss (losses from ``temperature_losses``, summed over parts);
    for more than two classes, the least loss at or below 1."""
    allowed = losses.masked_fill(TEMPERATURES > 1, torch.inf) if num_classes > 2 else losses
    return float(TEMPERATURES[int(allowed.argmin())])


@torch.no_grad()
def fold_temperature(classifier: nn.Linear, temperature: float) -> None:
    """Divide a linear head's weights and bias by ``temperature``: its logits come out already scaled,
    in every form of the network (patch logits, dense logit maps, the exported graph)."""
    classifier.weight.div_(temperature)
    classifier.bias.div_(temperature)

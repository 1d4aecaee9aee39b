"""Losses: cross-entropy, focal, ISDA, IGMSDA (the seed paper's closed form) and explicit GM.

Notation follows DESIGN.md: features ``a`` (N, F), classifier ``W`` (C, F) and ``b`` (C,), labels
``y``, logits ``z = W a + b`` and the class-conditional feature covariance ``Σ`` (C, F, F).

ISDA (Wang et al., TPAMI 2022) augments each feature in the direction of its class covariance,
``ã ~ N(a, λ Σ_y)``, and minimises a closed-form upper bound of the expected cross-entropy (paper
Eq. 4).  IGMSDA (Chen et al., IEEE T-ITS 2024, Eq. 8-9) does the same for the GM loss
``L_g = -log p_t - ½ log α + ½ log(α p_t + 1)``, which damps the gradient of augmented samples that
the classifier gets badly wrong (likely semantically broken ones).  The PartII term comes from
Jensen's and Cauchy's inequalities; it is loose, and grows with the margin of well-classified samples,
so the objective has a finite optimal margin.  That is the paper's method and it is kept as written.

Both bounds need one C×C table ``s[y, j] = (w_j - w_y)ᵀ Σ_y (w_j - w_y)``: it is computed once per
call in O(C²F²) and indexed by label, never as an N×F×F tensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import distributed as dist
from torch import nn

from crackcli.errors import UsageError


def _autocast_off(device: torch.device) -> torch.autocast:
    return torch.autocast(device_type=device.type, enabled=False)


class CovarianceEstimator(nn.Module):
    """Per-class running mean and covariance of features, count-weighted over everything seen.

    Equivalent to the population mean and covariance of all features passed to ``update`` so far, as
    in ISDA's estimator.  Statistics are float32 and outside autograd.  Under ``torch.distributed``
    every rank first gathers the whole global batch (N·F floats per rank, far less traffic than
    all-reducing C·F² second moments) and applies the same update, so all ranks hold the same
    ``covariance``.  Memory is O(C·F²) plus O(N·F) per update; classes absent from a batch are untouched.
    """

    count: torch.Tensor
    mean: torch.Tensor
    covariance: torch.Tensor

    def __init__(self, num_classes: int, feature_dim: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.feature_dim = feature_dim
        self.register_buffer("count", torch.zeros(num_classes, dtype=torch.float32))
        self.register_buffer("mean", torch.zeros(num_classes, feature_dim, dtype=torch.float32))
        self.register_buffer("covariance", torch.zeros(num_classes, feature_dim, feature_dim, dtype=torch.float32))
        self._host_count: np.ndarray | None = None  # ``count`` in host memory: see ``_counts``

    @torch.no_grad()
    def update(self, features: torch.Tensor, labels: torch.Tensor, host_labels: torch.Tensor | None = None) -> None:
        """Fold in a batch.  With ``host_labels`` (the same labels in CPU memory, as the loader gave them)
        the classes are grouped on the host and the counts kept there, so the update never waits for
        the GPU; without them (or across ranks) the groups are found on the device."""
        with _autocast_off(features.device):
            x = features.detach().to(self.mean.dtype)
            if host_labels is not None and not _distributed():
                grouped = host_labels.numpy()
                for cls in np.unique(grouped).tolist():
                    rows = torch.from_numpy(np.flatnonzero(grouped == cls)).to(x.device, non_blocking=True)
                    self._update_class(cls, x.index_select(0, rows))
                return
            x, labels = _gather_global_batch(x, labels)
            for cls in labels.unique().tolist():
                self._update_class(cls, x[labels == cls])

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._host_count = None  # read again from the loaded buffer

    def _counts(self) -> np.ndarray:
        """The per-class counts, mirrored in host memory as float32 like the buffer (read from the
        device once per run), so the shares below round exactly as they would on the device."""
        if self._host_count is None:
            self._host_count = self.count.cpu().numpy().copy()
        return self._host_count

    def _update_class(self, cls: int, x: torch.Tensor) -> None:
        n = np.float32(x.shape[0])
        counts = self._counts()
        counts[cls] += n
        total = counts[cls]
        share = n / total
        batch_mean = x.mean(0)
        delta = self.mean[cls] - batch_mean
        # Σ' = (1-s)·Σ + s·Σ_batch + s(1-s)·δδᵀ as one rank-(n+1) update: a single pass over the F×F matrix.
        rows = torch.cat([(x - batch_mean) * np.sqrt(share / n), delta.unsqueeze(0) * np.sqrt(share * (1 - share))])
        self.covariance[cls].addmm_(rows.T, rows, beta=float(1 - share))
        self.mean[cls].add_(share * (batch_mean - self.mean[cls]))
        self.count[cls] = float(total)


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _gather_global_batch(x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The concatenated batches of all ranks (the local batch when not distributed)."""
    if not _distributed():
        return x, labels
    world = dist.get_world_size()
    size = torch.tensor([x.shape[0]], device=x.device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    longest = int(max(s.item() for s in sizes))
    padded_x = torch.zeros(longest, x.shape[1], dtype=x.dtype, device=x.device)
    padded_x[: x.shape[0]] = x
    padded_y = torch.full((longest,), -1, dtype=labels.dtype, device=labels.device)
    padded_y[: labels.shape[0]] = labels
    all_x = [torch.empty_like(padded_x) for _ in range(world)]
    all_y = [torch.empty_like(padded_y) for _ in range(world)]
    dist.all_gather(all_x, padded_x)
    dist.all_gather(all_y, padded_y)
    keep = torch.cat(all_y) >= 0
    return torch.cat(all_x)[keep], torch.cat(all_y)[keep]


def _upcast(*tensors: torch.Tensor) -> list[torch.Tensor]:
    """At least float32, float64 kept (tests), so the bounds never run in half precision."""
    dtype = torch.float32
    for t in tensors:
        dtype = torch.promote_types(dtype, t.dtype)
    return [t.to(dtype) for t in tensors]


def direction_variance(weight: torch.Tensor, covariance: torch.Tensor) -> torch.Tensor:
    """The C×C table ``s[y, j] = (w_j - w_y)ᵀ Σ_y (w_j - w_y)`` shared by both bounds."""
    diff = weight.unsqueeze(0) - weight.unsqueeze(1)  # diff[y, j] = w_j - w_y, (C, C, F)
    return ((diff @ covariance) * diff).sum(-1)


def isda_bound(
    features: torch.Tensor,
    labels: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    covariance: torch.Tensor,
    lam: float,
) -> torch.Tensor:
    """ISDA's upper bound of the expected cross-entropy under ``ã ~ N(a, λ Σ_y)``, batch mean (Eq. 4)."""
    with _autocast_off(features.device):
        a, w, b, cov = _upcast(features, weight, bias, covariance)
        augmented = a @ w.T + b + 0.5 * lam * direction_variance(w, cov)[labels]
        return F.cross_entropy(augmented, labels)


def igmsda_bound(
    features: torch.Tensor,
    labels: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    covariance: torch.Tensor,
    lam: float,
    alpha: float,
) -> torch.Tensor:
    """IGMSDA's upper bound of the expected GM loss under ``ã ~ N(a, λ Σ_y)``, batch mean (Eq. 8-9).

    ``-½ log α + PartI + PartII`` with PartI the ISDA bound and
    ``PartII = ½ log(1 + α/C² Σ_j exp(z_y - z_j + λ/2 s[y, j]))``, evaluated through logsumexp.
    """
    with _autocast_off(features.device):
        a, w, b, cov = _upcast(features, weight, bias, covariance)
        num_classes = w.shape[0]
        logits = a @ w.T + b
        half_var = 0.5 * lam * direction_variance(w, cov)[labels]
        part1 = F.cross_entropy(logits + half_var, labels, reduction="none")
        target = logits.gather(1, labels.unsqueeze(1))
        exponent = torch.logsumexp(target - logits + half_var, dim=1)
        part2 = 0.5 * F.softplus(math.log(alpha) - 2 * math.log(num_classes) + exponent)
        return (part1 + part2).mean() - 0.5 * math.log(alpha)


def gm_loss(logits: torch.Tensor, labels: torch.Tensor, alpha: float) -> torch.Tensor:
    """The GM loss ``-log p_t - ½ log α + ½ log(α p_t + 1)`` per sample (paper Eq. 5)."""
    log_pt = -F.cross_entropy(logits, labels, reduction="none")
    return -log_pt - 0.5 * math.log(alpha) + 0.5 * torch.log1p(alpha * log_pt.exp())


@dataclass(frozen=True)
class Progress:
    """Where training is, for the losses' schedules: ``iteration`` of ``total_iterations``, ``epoch`` of ``epochs``."""

    iteration: int = 0
    total_iterations: int = 1
    epoch: int = 0
    epochs: int = 1


class FeatureLoss(nn.Module):
    """A training loss over features, labels and the linear classifier that reads them."""

    def forward(
        self,
        features: torch.Tensor,
        labels: torch.Tensor,
        classifier: nn.Linear,
        progress: Progress,
        host_labels: torch.Tensor | None = None,  # ``labels`` in CPU memory, where the loader has them
    ) -> torch.Tensor:
        raise NotImplementedError


class CrossEntropy(FeatureLoss):
    def forward(self, features, labels, classifier, progress, host_labels=None):
        with _autocast_off(features.device):
            return F.cross_entropy(classifier(*_upcast(features)), labels)


class FocalLoss(FeatureLoss):
    """Focal loss (Lin et al. 2017): cross-entropy scaled by ``(1 - p_t)^γ``."""

    def __init__(self, gamma: float = 2.0) -> None:
        super().__init__()
        self.gamma = gamma

    def forward(self, features, labels, classifier, progress, host_labels=None):
        with _autocast_off(features.device):
            log_pt = -F.cross_entropy(classifier(*_upcast(features)), labels, reduction="none")
            return (-((1 - log_pt.exp()) ** self.gamma) * log_pt).mean()


class _AugmentedLoss(FeatureLoss):
    """Shared by the losses that augment features with the running class covariance."""

    def __init__(self, num_classes: int, feature_dim: int, lambda0: float, alpha0: float) -> None:
        super().__init__()
        self.estimator = CovarianceEstimator(num_classes, feature_dim)
        self.lambda0 = lambda0
        self.alpha0 = alpha0

    def lam(self, progress: Progress) -> float:
        """λ = (epoch / epochs)·λ₀, ISDA's schedule: no augmentation before the features mean anything."""
        return progress.epoch / max(progress.epochs, 1) * self.lambda0

    def alpha(self, progress: Progress) -> float:
        """α = (t / T)·α₀ + 1 with t the iteration (paper)."""
        return progress.iteration / max(progress.total_iterations, 1) * self.alpha0 + 1

    def _prepare(
        self, features: torch.Tensor, labels: torch.Tensor, classifier: nn.Linear, host_labels: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        self.estimator.update(features, labels, host_labels)
        return features, labels, classifier.weight, classifier.bias, self.estimator.covariance


class ISDALoss(_AugmentedLoss):
    def forward(self, features, labels, classifier, progress, host_labels=None):
        return isda_bound(*self._prepare(features, labels, classifier, host_labels), self.lam(progress))


class IGMSDALoss(_AugmentedLoss):
    def forward(self, features, labels, classifier, progress, host_labels=None):
        return igmsda_bound(
            *self._prepare(features, labels, classifier, host_labels), self.lam(progress), self.alpha(progress)
        )


class ExplicitGMLoss(_AugmentedLoss):
    """The paper's costly ablation: draw ``samples`` augmented features each and average the GM loss."""

    def __init__(self, num_classes: int, feature_dim: int, lambda0: float, alpha0: float, samples: int = 8):
        super().__init__(num_classes, feature_dim, lambda0, alpha0)
        self.samples = samples

    def forward(self, features, labels, classifier, progress, host_labels=None):
        a, labels, weight, bias, cov = self._prepare(features, labels, classifier, host_labels)
        with _autocast_off(a.device):
            a, weight, bias, cov = _upcast(a, weight, bias, cov)
            samples = a.unsqueeze(0).expand(self.samples, *a.shape)
            lam = self.lam(progress)
            if lam > 0:
                samples = samples + math.sqrt(lam) * _class_noise(cov, labels, self.samples, host_labels)
            logits = samples @ weight.T + bias  # (S, N, C)
            targets = labels.expand(self.samples, -1)
            return gm_loss(logits.flatten(0, 1), targets.flatten(), self.alpha(progress)).mean()


def _class_noise(
    cov: torch.Tensor, labels: torch.Tensor, samples: int, host_labels: torch.Tensor | None = None
) -> torch.Tensor:
    """``samples`` draws of N(0, Σ_y) for each label, shape (S, N, F), one Cholesky factor per class.

    With ``host_labels`` the rows of each class are found on the host, so drawing never waits for the device."""
    factors = _psd_cholesky(cov)
    noise = torch.randn(samples, labels.shape[0], cov.shape[-1], dtype=cov.dtype, device=cov.device)
    if host_labels is not None:
        grouped = host_labels.numpy()
        for cls in np.unique(grouped).tolist():
            rows = torch.from_numpy(np.flatnonzero(grouped == cls)).to(cov.device, non_blocking=True)
            noise.index_copy_(1, rows, noise.index_select(1, rows) @ factors[cls].T)
        return noise
    for cls in labels.unique():
        rows = labels == cls
        noise[:, rows] = noise[:, rows] @ factors[cls].T
    return noise


# Added to each covariance (times its mean variance) until its Cholesky factor exists: few samples
# make a class covariance singular.
_JITTERS = (1e-6, 1e-4, 1e-2, 1e-1)


def _psd_cholesky(cov: torch.Tensor) -> torch.Tensor:
    """Cholesky factors of covariance matrices that may be singular, each with the least jitter that works.

    Every jitter is tried at once (one batched decomposition) and the first that succeeded is picked on
    the device: asking which one did would wait for the device at every step."""
    eye = torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device)
    scale = cov.diagonal(dim1=-2, dim2=-1).mean(-1).clamp(min=1e-12).view(-1, 1, 1)
    jitters = torch.tensor(_JITTERS, dtype=cov.dtype, device=cov.device).view(-1, 1, 1, 1)
    factors, info = torch.linalg.cholesky_ex(cov.unsqueeze(0) + jitters * scale * eye)  # (J, C, F, F), (J, C)
    ok = info == 0
    ok[-1] = True  # a tenth of the mean variance added: every covariance matrix has a factor then
    first = ok.int().argmax(0)  # (C,)
    return factors.gather(0, first.view(1, -1, 1, 1).expand(1, *factors.shape[1:])).squeeze(0)


LOSSES = ("igmsda", "isda", "gm", "ce", "focal")


def build_loss(
    name: str,
    num_classes: int,
    feature_dim: int,
    *,
    lambda0: float = 0.5,
    alpha0: float = 2.5,
    gm_samples: int = 8,
    focal_gamma: float = 2.0,
) -> FeatureLoss:
    """The training loss registered under ``name`` (one of ``LOSSES``)."""
    if name == "ce":
        return CrossEntropy()
    if name == "focal":
        return FocalLoss(focal_gamma)
    if name == "isda":
        return ISDALoss(num_classes, feature_dim, lambda0, alpha0)
    if name == "igmsda":
        return IGMSDALoss(num_classes, feature_dim, lambda0, alpha0)
    if name == "gm":
        return ExplicitGMLoss(num_classes, feature_dim, lambda0, alpha0, gm_samples)
    raise UsageError(f"unknown loss '{name}': choose one of {', '.join(LOSSES)}")

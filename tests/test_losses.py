import math

import pytest
import torch
import torch.nn.functional as F

from crackcli.train.losses import (
    LOSSES,
    CovarianceEstimator,
    Progress,
    build_loss,
    gm_loss,
    igmsda_bound,
    isda_bound,
)


def random_problem(seed, n=6, c=3, f=5, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(n, f, generator=g, dtype=dtype)
    labels = torch.randint(0, c, (n,), generator=g)
    weight = torch.randn(c, f, generator=g, dtype=dtype)
    bias = torch.randn(c, generator=g, dtype=dtype)
    factor = torch.randn(c, f, f, generator=g, dtype=dtype) / math.sqrt(f)
    covariance = factor @ factor.transpose(1, 2)
    return features, labels, weight, bias, covariance


def naive_bounds(features, labels, weight, bias, covariance, lam, alpha):
    """Per-sample, per-class loops straight from the paper's equations."""
    c = weight.shape[0]
    isda, igmsda = [], []
    for a, y in zip(features, labels):
        z = weight @ a + bias
        s = torch.stack([(weight[j] - weight[y]) @ covariance[y] @ (weight[j] - weight[y]) for j in range(c)])
        z_aug = z + lam / 2 * s
        part1 = -(z_aug[y] - torch.logsumexp(z_aug, 0))
        terms = torch.stack(
            [torch.exp((weight[y] - weight[j]) @ a + bias[y] - bias[j] + lam / 2 * s[j]) for j in range(c)]
        )
        part2 = 0.5 * torch.log(1 + alpha / c**2 * terms.sum())
        isda.append(part1)
        igmsda.append(-0.5 * math.log(alpha) + part1 + part2)
    return torch.stack(isda).mean(), torch.stack(igmsda).mean()


@pytest.mark.parametrize("seed", range(4))
def test_bounds_equal_naive_per_sample_implementation(seed):
    problem = random_problem(seed)
    lam, alpha = 0.7, 2.3
    want_isda, want_igmsda = naive_bounds(*problem, lam, alpha)
    torch.testing.assert_close(isda_bound(*problem, lam), want_isda, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(igmsda_bound(*problem, lam, alpha), want_igmsda, rtol=1e-10, atol=1e-12)


def monte_carlo(features, labels, weight, bias, covariance, lam, alpha, draws=40000, seed=0):
    """Expected CE and GM loss over ã ~ N(a, λ Σ_y), estimated by sampling."""
    g = torch.Generator().manual_seed(seed)
    chol = torch.linalg.cholesky(covariance + 1e-12 * torch.eye(covariance.shape[-1], dtype=covariance.dtype))
    ce, gm = [], []
    for a, y in zip(features, labels):
        noise = torch.randn(draws, a.shape[0], generator=g, dtype=a.dtype)
        samples = a + math.sqrt(lam) * noise @ chol[y].T
        logits = samples @ weight.T + bias
        targets = y.expand(draws)
        ce.append(F.cross_entropy(logits, targets))
        gm.append(gm_loss(logits, targets, alpha).mean())
    return torch.stack(ce).mean(), torch.stack(gm).mean()


@pytest.mark.parametrize("seed", range(5))
def test_bounds_are_above_monte_carlo_expectations(seed):
    problem = random_problem(100 + seed, n=5, c=3, f=4)
    lam, alpha = 0.9, 2.5
    mc_ce, mc_gm = monte_carlo(*problem, lam, alpha)
    # 40k draws give a standard error far below the margins asserted here.
    assert isda_bound(*problem, lam) >= mc_ce - 1e-3
    assert igmsda_bound(*problem, lam, alpha) >= mc_gm - 1e-3


def test_bounds_reduce_to_plain_losses_without_augmentation():
    features, labels, weight, bias, cov = random_problem(7)
    logits = features @ weight.T + bias
    torch.testing.assert_close(isda_bound(features, labels, weight, bias, cov, 0.0), F.cross_entropy(logits, labels))
    # With λ = 0 the IGMSDA bound still sits above the GM loss (Cauchy's step), never below.
    assert igmsda_bound(features, labels, weight, bias, cov, 0.0, 2.5) >= gm_loss(logits, labels, 2.5).mean()


def test_gradcheck_both_bounds():
    features, labels, weight, bias, cov = random_problem(11, n=4, c=3, f=3)
    for t in (features, weight, bias):
        t.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, w, b: isda_bound(a, labels, w, b, cov, 0.6), (features, weight, bias))
    assert torch.autograd.gradcheck(
        lambda a, w, b: igmsda_bound(a, labels, w, b, cov, 0.6, 3.0), (features, weight, bias)
    )


def test_bounds_compute_in_float32_for_half_inputs():
    features, labels, weight, bias, cov = random_problem(3, dtype=torch.float32)
    full = igmsda_bound(features, labels, weight, bias, cov, 0.5, 2.5)
    half = igmsda_bound(features.bfloat16(), labels, weight.bfloat16(), bias.bfloat16(), cov, 0.5, 2.5)
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, full, rtol=5e-2, atol=5e-2)


def batches(seed, sizes, c=3, f=6):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(n, f, generator=g) * 3 + 5, torch.randint(0, c, (n,), generator=g)) for n in sizes]


def population_stats(features, labels, c):
    mean = torch.stack([features[labels == k].mean(0) for k in range(c)])
    cov = torch.stack([torch.cov(features[labels == k].T, correction=0) for k in range(c)])
    return mean, cov


def test_estimator_after_many_batches_equals_statistics_of_all_data():
    data = batches(0, [7, 12, 3, 20, 9])
    estimator = CovarianceEstimator(3, 6)
    for x, y in data:
        estimator.update(x, y)
    all_x = torch.cat([x for x, _ in data]).double()
    all_y = torch.cat([y for _, y in data])
    mean, cov = population_stats(all_x, all_y, 3)
    torch.testing.assert_close(estimator.mean.double(), mean, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(estimator.covariance.double(), cov, rtol=1e-4, atol=1e-4)
    assert estimator.count.tolist() == [float((all_y == k).sum()) for k in range(3)]
    assert estimator.covariance.dtype == torch.float32


def test_estimator_keeps_statistics_of_classes_absent_from_a_batch():
    estimator = CovarianceEstimator(3, 4)
    x, y = batches(1, [30], f=4)[0]
    estimator.update(x, y)
    before = {k: v.clone() for k, v in estimator.state_dict().items()}
    only_class_0 = torch.zeros(5, dtype=torch.long)
    estimator.update(torch.randn(5, 4), only_class_0)
    for name in ("mean", "covariance", "count"):
        torch.testing.assert_close(getattr(estimator, name)[1:], before[name][1:], rtol=0, atol=0)
    assert not torch.equal(estimator.covariance[0], before["covariance"][0])


def test_estimator_state_round_trips():
    estimator = CovarianceEstimator(2, 4)
    x, y = batches(2, [25], c=2, f=4)[0]
    estimator.update(x, y)
    restored = CovarianceEstimator(2, 4)
    restored.load_state_dict(estimator.state_dict())
    for key, value in estimator.state_dict().items():
        torch.testing.assert_close(restored.state_dict()[key], value, rtol=0, atol=0)


def test_estimator_ignores_gradients_and_autocast():
    estimator = CovarianceEstimator(2, 4)
    x = torch.randn(8, 4, requires_grad=True)
    y = torch.tensor([0, 1] * 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        estimator.update(x * 2, y)
    assert not estimator.covariance.requires_grad
    assert estimator.covariance.dtype == torch.float32


def test_schedules_follow_the_paper():
    loss = build_loss("igmsda", 2, 4, lambda0=0.5, alpha0=2.5)
    start = Progress(iteration=0, total_iterations=100, epoch=0, epochs=10)
    middle = Progress(iteration=50, total_iterations=100, epoch=5, epochs=10)
    assert loss.alpha(start) == 1.0 and loss.lam(start) == 0.0
    assert loss.alpha(middle) == pytest.approx(2.25) and loss.lam(middle) == pytest.approx(0.25)


@pytest.mark.parametrize("name", LOSSES)
def test_every_registered_loss_backpropagates_and_lowers_itself(name):
    torch.manual_seed(0)
    features = torch.randn(32, 8)
    labels = (features[:, 0] > 0).long()
    body = torch.nn.Linear(8, 8)
    head = torch.nn.Linear(8, 2)
    loss_fn = build_loss(name, 2, 8, gm_samples=4)
    optimiser = torch.optim.SGD([*body.parameters(), *head.parameters()], lr=0.1)
    progress = Progress(iteration=5, total_iterations=10, epoch=1, epochs=2)
    first = None
    for _ in range(30):
        loss = loss_fn(body(features), labels, head, progress)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        first = loss.item() if first is None else first
    assert torch.isfinite(loss)
    assert loss.item() < first


def test_explicit_gm_without_augmentation_is_the_gm_loss():
    torch.manual_seed(0)
    features = torch.randn(10, 4)
    labels = torch.randint(0, 3, (10,))
    head = torch.nn.Linear(4, 3)
    loss_fn = build_loss("gm", 3, 4, gm_samples=3)
    progress = Progress(iteration=4, total_iterations=8, epoch=0, epochs=4)  # λ = 0, α = 2.25
    expected = gm_loss(head(features), labels, 2.25).mean()
    torch.testing.assert_close(loss_fn(features, labels, head, progress), expected)


def test_explicit_gm_sample_mean_stays_below_the_igmsda_bound():
    torch.manual_seed(3)
    features = torch.randn(16, 4)
    labels = torch.randint(0, 2, (16,))
    head = torch.nn.Linear(4, 2)
    gm = build_loss("gm", 2, 4, lambda0=1.0, gm_samples=4000)
    progress = Progress(iteration=1, total_iterations=2, epoch=1, epochs=1)  # λ = 1, α = 2.25
    sampled = gm(features, labels, head, progress)
    bound = igmsda_bound(features, labels, head.weight, head.bias, gm.estimator.covariance, 1.0, 2.25)
    assert sampled <= bound + 1e-3


def test_unknown_loss_is_a_usage_error():
    from crackcli.errors import UsageError

    with pytest.raises(UsageError, match="choose one of"):
        build_loss("hinge", 2, 4)


# Operations that make a GPU program wait for the device: reading a value back (item, tolist, float,
# bool), and shapes that depend on values (boolean masks, unique).
SYNCING = ("aten._local_scalar_dense", "aten.nonzero", "aten._unique2", "aten.unique", "aten.masked_select")


def syncing_ops(run) -> list[str]:
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.seen: list[str] = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = str(func.overloadpacket)
            if name.startswith(SYNCING):
                self.seen.append(name)
            return func(*args, **(kwargs or {}))

    with Count() as counted:
        run()
    return counted.seen


@pytest.mark.parametrize("name", ["isda", "igmsda", "gm"])
def test_the_augmented_losses_never_wait_for_the_device_when_given_the_host_labels(name):
    torch.manual_seed(0)
    features = torch.randn(32, 16, requires_grad=True)
    labels = torch.randint(0, 3, (32,))
    head = torch.nn.Linear(16, 3)
    loss_fn = build_loss(name, 3, 16)
    progress = Progress(iteration=5, total_iterations=10, epoch=1, epochs=2)
    loss_fn(features, labels, head, progress, host_labels=labels.clone())  # the first step reads the counts once

    def step():
        loss_fn(features, labels, head, progress, host_labels=labels.clone()).backward()

    assert syncing_ops(step) == []
    # The counter sees them where they are: the same loss without host labels groups on the device.
    assert syncing_ops(lambda: loss_fn(features, labels, head, progress).backward())


def test_explicit_gm_draws_the_same_noise_grouped_on_the_host_or_on_the_device():
    from crackcli.train.losses import _class_noise

    torch.manual_seed(2)
    basis = torch.randn(3, 6, 6)
    cov = basis @ basis.transpose(1, 2)
    cov[2] = 0  # a class seen once: singular, factored with jitter
    labels = torch.tensor([0, 2, 1, 1, 0, 2, 2])
    torch.manual_seed(3)
    on_host = _class_noise(cov, labels, 5, host_labels=labels.clone())
    torch.manual_seed(3)
    on_device = _class_noise(cov, labels, 5)
    torch.testing.assert_close(on_host, on_device)
    assert torch.isfinite(on_host).all()


def test_host_and_device_grouping_give_the_same_statistics():
    torch.manual_seed(1)
    on_host, on_device = build_loss("igmsda", 3, 8), build_loss("igmsda", 3, 8)
    head = torch.nn.Linear(8, 3)
    progress = Progress(iteration=1, total_iterations=4, epoch=1, epochs=2)
    for _ in range(4):
        features, labels = torch.randn(20, 8), torch.randint(0, 3, (20,))
        torch.testing.assert_close(
            on_host(features, labels, head, progress, host_labels=labels.clone()),
            on_device(features, labels, head, progress),
        )
    for buffer in ("count", "mean", "covariance"):
        torch.testing.assert_close(getattr(on_host.estimator, buffer), getattr(on_device.estimator, buffer))

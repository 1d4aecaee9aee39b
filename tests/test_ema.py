"""The moving average of weights that --ema validates, saves and exports."""

import pytest
import torch

from crackcli.train.ema import WeightAverage


def small_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(), torch.nn.LazyLinear(2)
    )


def test_average_follows_the_formula_with_its_warm_up():
    net = small_net()
    net.eval()(torch.zeros(2, 3, 5, 5))  # materialise the lazy layer
    average = WeightAverage(net, decay=0.9)
    start = net[0].weight.detach().clone()
    expected = start.clone()
    for step in range(1, 40):
        with torch.no_grad():
            net[0].weight.add_(1.0)
        net.train()(torch.randn(2, 3, 5, 5))  # moves the batch-norm statistics and their counter
        keep = min(0.9, step / (9 + step))  # (1 + n) / (10 + n) with n = step - 1 earlier updates
        assert average.current_decay() == pytest.approx(keep)
        expected = keep * expected + (1 - keep) * net[0].weight.detach()
        average.update(net)
    torch.testing.assert_close(average.model[0].weight, expected)
    # The average lags behind the raw weights, which moved by 39 in every entry.
    assert torch.all(average.model[0].weight < net[0].weight - 2)
    # Integer counters are copied, not averaged; float statistics are averaged.
    assert int(average.model[1].num_batches_tracked) == int(net[1].num_batches_tracked) == 39
    assert not torch.equal(average.model[1].running_mean, net[1].running_mean)
    assert not average.model.training and not any(p.requires_grad for p in average.model.parameters())


def test_state_round_trip_continues_identically():
    net = small_net()
    net(torch.zeros(1, 3, 5, 5))
    first = WeightAverage(net, decay=0.99)
    for _ in range(3):
        with torch.no_grad():
            net[0].weight.mul_(1.1)
        first.update(net)
    second = WeightAverage(net, decay=0.5)
    second.load_state_dict(first.state_dict(), first.model.state_dict())
    with torch.no_grad():
        net[0].weight.mul_(1.1)
    first.update(net)
    second.update(net)
    assert second.updates == first.updates == 4 and second.decay == 0.99
    torch.testing.assert_close(second.model[0].weight, first.model[0].weight, rtol=0, atol=0)


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5])
def test_decay_outside_zero_one_is_refused(decay):
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(small_net(), decay)


def test_an_update_is_a_couple_of_fused_operations_whatever_the_network():
    from torch.utils._python_dispatch import TorchDispatchMode
    from torchvision.models import resnet18

    class Count(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.ops: list[str] = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops.append(str(func))
            return func(*args, **(kwargs or {}))

    net = resnet18()
    average = WeightAverage(net, decay=0.99)
    average.update(net)  # the first update gathers the tensor lists
    with Count() as counted:
        average.update(net)
    assert len(net.state_dict()) > 100 and len(counted.ops) <= 2, counted.ops

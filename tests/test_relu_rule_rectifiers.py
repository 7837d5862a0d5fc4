"""``relu_rule`` on clipped ReLUs (``nn.ReLU6``, ``F.relu6``, ``hardtanh(0, m)``) and on other
nonlinearities: a clipped ReLU's rectification follows the rule; anything else is named in a warning."""

import copy
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.methods.backprop import relu_rule


class _Net(nn.Module):
    def __init__(self, act: str):
        super().__init__()
        torch.manual_seed(0)
        self.c1, self.c2, self.fc = nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 3), nn.Linear(8, 4)
        self.act = act
        self.relu6 = nn.ReLU6(inplace=True)

    def forward(self, x):
        y = self.c1(x) * 8  # large enough that some activations pass the clip
        if self.act == "module":
            y = self.relu6(y)
        elif self.act == "functional":
            y = F.relu6(y)
        elif self.act == "hardtanh":
            y = F.hardtanh(y, 0.0, 3.0)
        else:  # the reference: a ReLU, then the clip
            y = torch.relu(y).clamp_max(3.0 if self.act == "ref3" else 6.0)
        y = self.c2(y)
        return self.fc(torch.relu(y).mean((2, 3)))


def _input_grad(net, rule, x, cls=1):
    x = x.clone().requires_grad_(True)
    with relu_rule(rule) as mode:
        out = net(x)
        (g,) = torch.autograd.grad(out[:, cls].sum(), x)
    return g, mode


@pytest.mark.parametrize("rule", ["guided", "deconv"])
@pytest.mark.parametrize("act, ref", [("module", "ref6"), ("functional", "ref6"), ("hardtanh", "ref3")])
def test_clipped_relu_follows_the_rule(rule, act, ref):
    x = torch.randn(2, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    net, reference = _Net(act), _Net(ref)
    reference.load_state_dict(net.state_dict())
    with torch.no_grad():
        pre = net.c1(x) * 8
    assert (pre > 6).any() and (pre < 0).any()  # both sides of the clip are exercised
    g, mode = _input_grad(net, rule, x)
    g_ref, _ = _input_grad(reference, rule, x)
    assert mode.calls == 2 and torch.allclose(g, g_ref, atol=1e-6)
    plain, _ = _input_grad(copy.deepcopy(net), "standard", x)
    assert not torch.allclose(g, plain, atol=1e-4)  # the rule changed the clipped ReLU's backward
    with torch.no_grad():
        assert torch.allclose(net(x), reference(x), atol=1e-6)  # forward values unchanged


def test_other_nonlinearities_are_named_in_a_warning():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.SiLU(), nn.Conv2d(4, 4, 3), nn.Hardtanh(), nn.Flatten())
    x = torch.randn(1, 3, 8, 8, requires_grad=True)
    with pytest.warns(UserWarning, match="is not a ReLU") as record:
        with relu_rule("guided") as mode:
            net(x).sum().backward()
    assert mode.calls == 0 and len([w for w in record if "silu" in str(w.message)]) == 1
    assert any("hardtanh is not a ReLU" in str(w.message) for w in record)  # hardtanh(-1, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with relu_rule("standard"):
            net(x)  # the standard rule installs no mode and warns about nothing

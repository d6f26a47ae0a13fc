"""GaussianHead: exact masked log-likelihood."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Normal

from latentode.heads import GaussianHead


def test_log_likelihood_matches_torch_normal_on_observed_entries():
    head = GaussianHead(2, std=0.3)
    mean = torch.randn(4, 3, 5, 2)
    values = torch.randn(3, 5, 2)
    mask = (torch.rand(3, 5, 2) < 0.5).float()
    expected = (Normal(mean, 0.3).log_prob(values) * mask).sum(dim=(-1, -2))
    torch.testing.assert_close(head.log_likelihood(mean, values, mask), expected)


def test_garbage_under_the_mask_is_ignored():
    head = GaussianHead(1)
    mean = torch.zeros(2, 3, 1)
    mask = torch.tensor([[[1.0], [0.0], [1.0]], [[0.0], [0.0], [1.0]]])
    values = torch.zeros(2, 3, 1)
    dirty = torch.where(mask > 0, values, torch.full_like(values, float("nan")))
    torch.testing.assert_close(
        head.log_likelihood(mean, dirty, mask), head.log_likelihood(mean, values, mask)
    )


def test_learned_std_is_a_parameter_fixed_std_a_buffer():
    assert isinstance(GaussianHead(3, learn_std=True).log_std, torch.nn.Parameter)
    fixed = GaussianHead(3)
    assert "log_std" in dict(fixed.named_buffers())
    assert not list(fixed.parameters())


def test_bad_std():
    with pytest.raises(ValueError, match=r"`std` must be > 0"):
        GaussianHead(2, std=0.0)


def test_a_learned_std_starts_where_asked_and_never_falls_below_its_floor():
    head = GaussianHead(2, std=0.3, learn_std=True, floor=0.01)
    torch.testing.assert_close(head.std, torch.full((2,), 0.3))
    values = torch.zeros(1, 4, 2)
    mask = torch.ones(1, 4, 2)
    opt = torch.optim.SGD(head.parameters(), lr=1.0)
    for _ in range(200):  # an exact fit pushes the std down as far as it may go
        opt.zero_grad()
        (-head.log_likelihood(values.clone(), values, mask).sum()).backward()
        opt.step()
    assert torch.all(head.std >= 0.01)
    assert torch.all(head.std < 0.011)
    # the likelihood is bounded: at most that of the floor
    bound = Normal(0.0, 0.01).log_prob(torch.tensor(0.0)) * 8
    assert head.log_likelihood(values, values, mask).item() <= bound.item() + 1e-4


def test_a_learned_std_below_its_floor_is_refused():
    with pytest.raises(ValueError, match="above its floor"):
        GaussianHead(2, std=1e-4, learn_std=True)

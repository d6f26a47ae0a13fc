"""Encoders: shapes, registry, and the invariances a posterior over z0 must have."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from latentode.data.collate import SeriesItem, collate
from latentode.encoders import ENCODERS, FlowRNNEncoder, GRUEncoder, ODERNNEncoder

N_FEATURES = 3


def _random_batch(seed=0, n_series=5, max_len=7):
    g = torch.Generator().manual_seed(seed)
    items = []
    for i in range(n_series):
        n = int(torch.randint(1, max_len + 1, (1,), generator=g))
        times = torch.sort(torch.rand(n, generator=g))[0]
        times[0] = 0.0
        values = torch.randn(n, N_FEATURES, generator=g)
        mask = (torch.rand(n, N_FEATURES, generator=g) < 0.6).float()
        mask[0, 0] = 1.0  # every series observes something
        items.append(SeriesItem(i, times, values * mask, mask))
    return collate(items)


def _encoder(name, seed=0):
    torch.manual_seed(seed)
    enc = ENCODERS[name](N_FEATURES, latent_dim=4, hidden_dim=8)
    if name == "odernn":  # leave the zero init, so the ODE part actually moves the state
        for p in enc.field.parameters():
            torch.nn.init.normal_(p, std=0.3)
    return enc.double()


NAMES = sorted(ENCODERS)


def test_registry():
    assert {"flowrnn": FlowRNNEncoder, "gru": GRUEncoder, "odernn": ODERNNEncoder} == ENCODERS


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_posterior_shapes_for_random_sizes(name, seed):
    batch = _random_batch(seed, n_series=2 + seed, max_len=3 + 2 * seed).to(dtype=torch.float64)
    q = _encoder(name)(batch)
    assert q.loc.shape == q.scale.shape == (batch.batch_size, 4)
    assert (q.scale > 0).all()
    assert torch.isfinite(q.loc).all()


@pytest.mark.parametrize("name", NAMES)
def test_masked_garbage_changes_nothing(name):
    batch = _random_batch().to(dtype=torch.float64)
    enc = _encoder(name)
    clean = enc(batch)
    garbage = torch.where(batch.mask > 0, batch.values, torch.full_like(batch.values, 1e6))
    dirty = enc(dataclasses.replace(batch, values=garbage))
    assert torch.equal(clean.loc, dirty.loc)
    assert torch.equal(clean.scale, dirty.scale)


@pytest.mark.parametrize("name", NAMES)
def test_permuting_the_batch_permutes_the_posterior(name):
    batch = _random_batch().to(dtype=torch.float64)
    enc = _encoder(name)
    perm = torch.tensor([3, 0, 4, 1, 2])
    torch.testing.assert_close(enc(batch.select(perm)).loc, enc(batch).loc[perm])


@pytest.mark.parametrize("name", NAMES)
def test_fully_masked_positions_change_nothing(name):
    """Rows with nothing observed, appended at the end or inserted inside, are invisible."""
    enc = _encoder(name)
    t = torch.tensor([0.0, 0.4, 0.9], dtype=torch.float64)
    v = torch.randn(3, N_FEATURES, dtype=torch.float64)
    m = torch.ones(3, N_FEATURES, dtype=torch.float64)
    base = collate([SeriesItem(0, t, v, m)])
    t_more = torch.tensor([0.0, 0.2, 0.4, 0.9, 1.3, 2.0], dtype=torch.float64)
    v_more = torch.cat([v[:1], torch.randn(1, N_FEATURES), v[1:], torch.randn(2, N_FEATURES)])
    m_more = torch.cat([m[:1], torch.zeros(1, N_FEATURES), m[1:], torch.zeros(2, N_FEATURES)])
    padded = collate([SeriesItem(0, t_more, v_more.double(), m_more)])
    torch.testing.assert_close(enc(padded).loc, enc(base).loc, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_times_matter(name):
    batch = _random_batch().to(dtype=torch.float64)
    enc = _encoder(name)
    stretched = dataclasses.replace(batch, times=batch.times * 3)
    assert not torch.allclose(enc(batch).loc, enc(stretched).loc)


def test_odernn_counts_its_evaluations():
    batch = _random_batch().to(dtype=torch.float64)
    enc = ODERNNEncoder(N_FEATURES, 4, 8, n_substeps=3, method="rk4").double()
    enc(batch)
    assert enc.nfe == (batch.max_obs + 1) * 3 * 4  # each position + the move to time 0


def test_series_without_observations_are_refused():
    batch = _random_batch().to(dtype=torch.float64)
    empty = dataclasses.replace(batch, mask=torch.zeros_like(batch.mask))
    with pytest.raises(ValueError, match=r"no observed value to encode"):
        _encoder("gru")(empty)


@pytest.mark.parametrize(
    ("cls", "kwargs", "error", "match"),
    [
        (GRUEncoder, {"latent_dim": 0}, ValueError, r"`latent_dim` must be at least 1"),
        (GRUEncoder, {"hidden_dim": 1.5}, TypeError, r"`hidden_dim` must be an integer"),
        (ODERNNEncoder, {"n_substeps": 0}, ValueError, r"`n_substeps` must be at least 1"),
        (ODERNNEncoder, {"method": "dopri5"}, ValueError, r"`method` must be one of"),
    ],
)
def test_bad_encoder_arguments(cls, kwargs, error, match):
    args = {"n_features": 2, "latent_dim": 3, **kwargs}
    with pytest.raises(error, match=match):
        cls(**args)


@pytest.mark.parametrize("name", NAMES)
def test_the_gap_from_time_zero_to_the_first_observation_matters(name):
    """z0 lives at time 0: starting the same observations later must change the posterior."""
    batch = _random_batch().to(dtype=torch.float64)
    enc = _encoder(name)
    later = dataclasses.replace(batch, times=batch.times + 0.5)
    assert not torch.allclose(enc(batch).loc, enc(later).loc)

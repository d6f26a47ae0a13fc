"""LatentODEModel: composition, invariances, sampling, and that it learns."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from latentode.core import SolverConfig
from latentode.data import IrregularDataset, make_periodic
from latentode.model import LatentODEModel

FAST = SolverConfig(method="rk4", step_size=0.1)


def _data(n=12):
    data = make_periodic(n_series=n, n_points=20, random_state=0)
    return IrregularDataset.from_frame(data.observed, dtype=torch.float64)


def _model(encoder="odernn"):
    torch.manual_seed(0)
    return LatentODEModel(
        1,
        latent_dim=4,
        encoder=encoder,
        encoder_hidden=8,
        decoder_width=16,
        decoder_depth=1,
        obs_std=0.1,
        train_solver=FAST,
    ).double()


@pytest.mark.parametrize("encoder", ["gru", "odernn"])
def test_shapes_and_finite_loss(encoder):
    batch = _data().batch()
    model = _model(encoder)
    terms, out = model.loss(batch, batch, n_samples=3)
    assert out.z0.shape == (3, 12, 4)
    assert out.mean.shape == (3, 12, batch.max_obs, 1)
    assert torch.isfinite(terms.loss)
    terms.loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_masked_garbage_changes_neither_loss_nor_posterior():
    batch = _data().batch()
    model = _model()
    g = torch.Generator().manual_seed(1)
    clean, out = model.loss(batch, batch, n_samples=2, generator=g)
    dirty_batch = dataclasses.replace(
        batch, values=torch.where(batch.mask > 0, batch.values, torch.full_like(batch.values, 1e9))
    )
    g = torch.Generator().manual_seed(1)
    dirty, out_d = model.loss(dirty_batch, dirty_batch, n_samples=2, generator=g)
    assert torch.equal(clean.loss, dirty.loss)
    assert torch.equal(out.posterior.loc, out_d.posterior.loc)


def test_permuting_the_batch_permutes_the_outputs():
    batch = _data().batch()
    model = _model().eval()
    perm = torch.randperm(batch.batch_size)
    with torch.no_grad():
        a = model(batch, batch.times).posterior.loc
        b = model(batch.select(perm), batch.times[perm]).posterior.loc
        torch.testing.assert_close(b, a[perm])
        ma = model.decoder(a.unsqueeze(0), batch.times)
        mb = model.decoder(b.unsqueeze(0), batch.times[perm])
        torch.testing.assert_close(mb, ma[:, perm], atol=1e-10, rtol=0)


def test_seeded_sampling_is_reproducible():
    model = _model()
    times = torch.linspace(0, 1, 5, dtype=torch.float64).expand(3, 5)
    a = model.sample_prior(times, 4, generator=torch.Generator().manual_seed(7))
    b = model.sample_prior(times, 4, generator=torch.Generator().manual_seed(7))
    assert a.shape == (4, 3, 5, 1)
    assert torch.equal(a, b)


def test_a_few_steps_of_training_reduce_the_loss():
    batch = _data().batch()
    model = _model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(30):
        opt.zero_grad()
        terms, _ = model.loss(batch, batch, generator=torch.Generator().manual_seed(0))
        terms.loss.backward()
        opt.step()
        first = terms.loss.item() if first is None else first
    assert terms.loss.item() < first


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"encoder": "lstm"}, ValueError, r"`encoder` must be one of 'flowrnn', 'gru', 'odernn'"),
        ({"latent_dim": 0}, ValueError, r"`latent_dim` must be at least 1"),
    ],
)
def test_bad_configuration(kwargs, error, match):
    with pytest.raises(error, match=match):
        LatentODEModel(1, **kwargs)


def test_bad_sample_count_and_target_rows():
    batch = _data().batch()
    model = _model()
    with pytest.raises(ValueError, match=r"`n_samples` must be at least 1"):
        model(batch, batch.times, n_samples=0)
    with pytest.raises(ValueError, match=r"`target_times` covers 3 series, `cond` 12"):
        model(batch, batch.times[:3])


def test_appending_fully_masked_positions_changes_nothing():
    """Rows with nothing observed, with new later times, leave the loss and posterior alone."""
    from latentode.data.collate import SeriesItem, collate

    torch.manual_seed(0)
    model = LatentODEModel(
        2, latent_dim=3, encoder_hidden=6, decoder_width=8, decoder_depth=1, obs_std=0.1
    ).double()
    g = torch.Generator().manual_seed(0)
    items, longer = [], []
    for i in range(4):
        n = 3 + i
        times = torch.sort(torch.rand(n, generator=g, dtype=torch.float64)).values
        values = torch.randn(n, 2, generator=g, dtype=torch.float64)
        mask = torch.ones(n, 2, dtype=torch.float64)
        items.append(SeriesItem(i, times, values, mask))
        extra = times[-1] + torch.tensor([0.3, 0.7], dtype=torch.float64)
        longer.append(
            SeriesItem(
                i,
                torch.cat([times, extra]),
                torch.cat([values, torch.full((2, 2), 1e6, dtype=torch.float64)]),
                torch.cat([mask, torch.zeros(2, 2, dtype=torch.float64)]),
            )
        )
    base, padded = collate(items), collate(longer)
    a, out_a = model.loss(base, base, n_samples=2, generator=torch.Generator().manual_seed(5))
    b, out_b = model.loss(padded, padded, n_samples=2, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(out_b.posterior.loc, out_a.posterior.loc, rtol=0, atol=1e-12)
    torch.testing.assert_close(b.loss, a.loss, rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_shapes_for_random_sizes(seed):
    from latentode.data.collate import SeriesItem, collate

    g = torch.Generator().manual_seed(seed)

    def draw(low, high):
        return int(torch.randint(low, high + 1, (1,), generator=g))

    n_series, n_features, latent, k = draw(1, 6), draw(1, 4), draw(1, 5), draw(1, 3)
    items = []
    for i in range(n_series):
        n = draw(1, 8)
        times = torch.sort(torch.rand(n, generator=g)).values
        mask = (torch.rand(n, n_features, generator=g) < 0.7).float()
        mask[0, 0] = 1.0
        items.append(SeriesItem(i, times, torch.randn(n, n_features, generator=g) * mask, mask))
    batch = collate(items)
    encoder = ["gru", "odernn"][seed % 2]
    model = LatentODEModel(
        n_features, latent, encoder=encoder, encoder_hidden=5, decoder_width=6, decoder_depth=1
    )
    terms, out = model.loss(batch, batch, n_samples=k)
    assert out.posterior.loc.shape == (n_series, latent)
    assert out.z0.shape == (k, n_series, latent)
    assert out.mean.shape == (k, n_series, batch.max_obs, n_features)
    assert torch.isfinite(terms.loss)
    prior = model.sample_prior(batch.times, n_samples=k)
    assert prior.shape == (k, n_series, batch.max_obs, n_features)


def test_posterior_samples_follow_the_data_and_are_seeded():
    batch = _data().batch()
    model = _model().eval()
    times = batch.times
    with torch.no_grad():
        a = model.sample_posterior(batch, times, 5, generator=torch.Generator().manual_seed(3))
        b = model.sample_posterior(batch, times, 5, generator=torch.Generator().manual_seed(3))
        other = model.sample_posterior(batch, times, 5, generator=torch.Generator().manual_seed(4))
    assert a.shape == (5, batch.batch_size, batch.max_obs, 1)
    assert torch.equal(a, b)
    assert not torch.equal(a, other)
    # the samples scatter around the decoded posterior mean, not around the prior's
    with torch.no_grad():
        q = model.encoder(batch)
        centre = model.decoder(q.loc.unsqueeze(0), times)[0]
    assert (a.mean(0) - centre).abs().mean() < (a - centre).abs().mean()


def test_predict_mean_decodes_the_posterior_mean():
    batch = _data().batch()
    model = _model().eval()
    with torch.no_grad():
        point = model.predict_mean(batch, batch.times)
        q = model.encoder(batch)
        expected = model.decoder(q.loc.unsqueeze(0), batch.times)[0]
    assert point.shape == (batch.batch_size, batch.max_obs, 1)
    torch.testing.assert_close(point, expected, rtol=0, atol=0)


class _Constant:
    """A likelihood term of the one interface that adds a known amount per series."""

    name = "constant"
    integrand = None
    weight = 2.0

    def extra_times(self, target):
        return None, None

    def log_likelihood(self, decoded, extra):
        return torch.full(decoded.curves.shape[:-2], 0.25, dtype=decoded.curves.dtype)


def test_the_loss_sums_its_likelihood_terms_with_no_branch_per_head():
    """The heads are a list of terms with one interface: a new term joins the sum as is."""
    ds = _data()
    model = _model()
    assert [t.name for t in model.terms] == ["values"]
    batch = ds.batch(list(range(4)))
    generator = torch.Generator().manual_seed(0)
    base, _ = model.loss(batch, batch, generator=generator)
    model.terms.append(_Constant())
    generator = torch.Generator().manual_seed(0)
    more, _ = model.loss(batch, batch, generator=generator)
    n_observed = batch.mask.sum(dim=(-1, -2))
    # the loss is the negative bound per observed value: 2 x 0.25 more nats per series
    expected = base.loss - (0.5 / n_observed).mean()
    torch.testing.assert_close(more.loss, expected)
    with_events = LatentODEModel(1, latent_dim=4, n_event_kinds=1, train_solver=FAST)
    assert [t.name for t in with_events.terms] == ["values", "events"]

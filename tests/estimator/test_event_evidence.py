"""Events are evidence: a series' own past events inform its posterior and its forecast rate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from latentode import LatentODE
from latentode.data.batch import EventBatch, IrregularBatch
from latentode.encoders.evidence import event_evidence
from latentode.model import LatentODEModel


def _rates(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each series fires events at 0.5 or 4 per unit on [0, 10]; its values are pure noise.

    Only a series' events reveal its rate: its values say nothing about it.
    """
    rng = np.random.default_rng(seed)
    obs, events = [], []
    for i in range(n):
        rate = rng.choice([0.5, 4.0])
        times = np.sort(rng.uniform(0.0, 10.0, rng.poisson(rate * 10)))
        events.append(pd.DataFrame({"id": i, "time": times}))
        t = np.sort(np.r_[0.0, rng.uniform(0.0, 10.0, 7)])
        obs.append(pd.DataFrame({"id": i, "time": t, "x": rng.normal(size=t.size)}))
    return pd.concat(obs, ignore_index=True), pd.concat(events, ignore_index=True)


def _log_likelihood(mean: np.ndarray, counts: np.ndarray) -> float:
    """Poisson log-likelihood of ``counts`` with means ``mean`` (without the log n! terms)."""
    return float(np.sum(counts * np.log(mean) - mean))


def test_a_series_past_events_beat_the_population_rate_on_held_out_series():
    """Fails if the encoder ignored the events: then every forecast is the population rate."""
    obs, events = _rates(120, 0)
    train, train_events = obs[obs["id"] < 90], events[events["id"] < 90]
    settings = {"latent_dim": 4, "encoder_hidden": 8, "decoder_width": 16, "decoder_depth": 1}
    # learn_std: values that are noise must not drown the events under a too-narrow likelihood
    model = LatentODE(**settings, poisson=True, learn_std=True, max_steps=400, random_state=0)
    model.fit(train, events=train_events)
    assert model.module_.model.event_inputs
    past = obs[(obs["id"] >= 90) & (obs["time"] < 5.0)]
    seen = events[(events["id"] >= 90) & (events["time"] < 5.0)]
    out = model.predict_intensity(past, times=[5.0, 10.0], events=seen, num_samples=20)
    mean = out[out["time"] == 10.0].set_index("id")["expected_count"]  # events in [5, 10]
    later = events[(events["id"] >= 90) & (events["time"] >= 5.0)]
    counts = later.groupby("id").size().reindex(mean.index, fill_value=0).to_numpy()
    population = len(train_events) / 90 / 10.0 * 5.0
    ours = _log_likelihood(mean.to_numpy(), counts)
    base = _log_likelihood(np.full(len(counts), population), counts)
    assert ours > base + 30.0, (ours, base)  # 101 nats better on 30 series when written


def test_events_count_at_the_first_position_at_or_after_them():
    batch = IrregularBatch(
        values=torch.zeros(1, 3, 1),
        mask=torch.tensor([[[1.0], [0.0], [1.0]]]),
        times=torch.tensor([[0.0, 1.0, 2.0]]),
        lengths=torch.tensor([3]),
        events=EventBatch(
            times=torch.tensor([[0.5, 1.0, 1.5, 2.5]]),
            kinds=torch.tensor([[1, 0, 1, 0]]),
            mask=torch.tensor([[1.0, 1.0, 1.0, 1.0]]),
        ),
    )
    counts, present = event_evidence(batch, 2)
    # 0.5 and 1.0 land at position 1 (time 1.0), 1.5 at position 2; 2.5 is after the last
    torch.testing.assert_close(counts.expm1(), torch.tensor([[[0.0, 0.0], [1.0, 1.0], [0.0, 1.0]]]))
    assert present.tolist() == [[False, True, True]]


def test_the_posterior_moves_with_the_events_and_needs_them():
    torch.manual_seed(0)
    model = LatentODEModel(1, 3, n_event_kinds=1, event_inputs=True)
    base = {
        "values": torch.zeros(1, 2, 1),
        "mask": torch.ones(1, 2, 1),
        "times": torch.tensor([[0.0, 1.0]]),
        "lengths": torch.tensor([2]),
    }
    few = EventBatch(torch.tensor([[0.5]]), torch.tensor([[0]]), torch.ones(1, 1))
    many = EventBatch(
        torch.full((1, 9), 0.5), torch.zeros(1, 9, dtype=torch.long), torch.ones(1, 9)
    )
    q_few, _ = model.encode(IrregularBatch(**base, events=few))
    q_many, _ = model.encode(IrregularBatch(**base, events=many))
    assert float((q_few.loc - q_many.loc).abs().max()) > 1e-4
    with pytest.raises(ValueError, match=r"reads each series' past events .* carries none"):
        model.encode(IrregularBatch(**base))
    with pytest.raises(ValueError, match=r"`event_inputs` reads events for a Poisson head"):
        LatentODEModel(1, 3, event_inputs=True)


def test_a_model_fitted_on_events_asks_for_them():
    obs, events = _rates(12, 1)
    model = LatentODE(latent_dim=3, poisson=True, max_steps=2, random_state=0)
    model.fit(obs, events=events)
    with pytest.raises(ValueError, match=r"reads each series' past events .* pass `events=`"):
        model.predict_intensity(obs)
    with pytest.raises(ValueError, match=r"pass `events=`"):
        model.predict(obs)

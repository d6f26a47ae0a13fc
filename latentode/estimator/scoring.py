"""Scores: the log-likelihood of new series under a fitted model, beside simple references."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.distributions import Normal

from latentode.data import IrregularDataset
from latentode.estimator.predictor import Predictor, check_num_samples
from latentode.estimator.times import check_inputs_cover

__all__ = ["score_details"]


def score_details(
    p: Predictor,
    df: pd.DataFrame,
    n_samples: int = 10,
    *,
    events: pd.DataFrame | None = None,
    inputs: pd.DataFrame | None = None,
    static: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """See :meth:`LatentODE.score_details`."""
    k = check_num_samples(n_samples, "n_samples")
    if p.event_source == "events" and events is None:
        raise ValueError(
            "this model learned its intensities from an events frame: pass the series' "
            "events too (score(df, events=frame of id, time[, kind]))"
        )
    ds = p.encode_frame(df, events=events, inputs=inputs, static=static)
    check_inputs_cover(
        ds,
        [s_.times[0] for s_ in ds.series],
        [s_.times[-1] for s_ in ds.series],
        "the series' observations",
    )
    model = p.module.model
    poisson = model.poisson is not None
    log_scale = np.log(p.feature_scaler.scale_)  # (F,)
    parts: dict[str, list[np.ndarray]] = {"values": [], "total": [], "events": []}
    counts: dict[str, list[np.ndarray]] = {"values": [], "events": []}
    reference: list[np.ndarray] = []
    with torch.no_grad():
        for rows in p.chunks(len(ds), max(s.n_obs for s in ds.series), k):
            batch = ds.batch(list(rows)).to(p.device)
            q, _ = model.encode(batch)
            z0 = q.loc + q.scale * p.latent_noise([ds.ids[i] for i in rows], k, p.seed)
            prior = Normal(torch.zeros_like(q.loc), 1.0)
            log_ratio = (prior.log_prob(z0) - q.log_prob(z0)).sum(-1)  # (K, B)
            values_ll = model.log_likelihood(z0, batch)  # (K, B)
            events_ll = model.event_log_likelihood(z0, batch) if poisson else 0.0
            bound_values = torch.logsumexp(values_ll + log_ratio, 0) - math.log(k)  # (B,)
            bound_total = torch.logsumexp(values_ll + events_ll + log_ratio, 0) - math.log(k)
            mask = batch.mask.double().cpu().numpy()
            # log p(x) = log p(z) - log(scale) + log|transform'(x)|, z the model's value
            user = p.to_user(batch.values.unsqueeze(0))[0]  # (B, T, F)
            slope = np.where(mask > 0, p.transforms.log_abs_slope(user), 0.0)
            jacobian = (mask * log_scale).sum(axis=(1, 2)) - slope.sum(axis=(1, 2))  # (B,)
            values = bound_values.double().cpu().numpy() - jacobian
            total = bound_total.double().cpu().numpy() - jacobian
            parts["values"].append(values)
            parts["total"].append(total)
            parts["events"].append(total - values)
            counts["values"].append(mask.sum(axis=(1, 2)))
            counts["events"].append(count_events(batch))
            z = np.where(mask > 0, batch.values.double().cpu().numpy(), 0.0)
            gauss = -0.5 * z**2 - 0.5 * math.log(2 * math.pi)
            reference.append((gauss * mask).sum(axis=(1, 2)) - jacobian)
    n_values = np.concatenate(counts["values"])
    n_events = np.concatenate(counts["events"])
    p.check_finite(np.concatenate(parts["total"]), "log-likelihood")
    table = {
        "values": (n_values, np.concatenate(parts["values"]), np.concatenate(reference)),
        "total": (n_values, np.concatenate(parts["total"]), None),
    }
    if poisson:
        table["events"] = (n_events, np.concatenate(parts["events"]), None)
    rows_out = {}
    for term, (n, nats, ref) in table.items():
        has = n > 0
        rows_out[term] = {
            "n": int(n.sum()),
            "log_likelihood": float(np.mean(nats[has] / n[has])) if has.any() else np.nan,
            "reference": np.nan if ref is None else float(np.mean(ref[has] / n[has])),
        }
    if poisson:
        rows_out["events"]["reference"] = homogeneous_poisson(ds, n_events)
        rows_out["total"]["reference"] = np.nan
    frame = pd.DataFrame.from_dict(rows_out, orient="index")
    return frame.reindex([t for t in ("values", "events", "total") if t in frame.index])


def count_events(batch: Any) -> np.ndarray:
    """``(batch,)`` events of each series: its explicit events, else its observed entries."""
    if batch.events is not None:
        return batch.events.mask.double().cpu().numpy().sum(axis=1)
    return batch.mask.double().cpu().numpy().sum(axis=(1, 2))


def homogeneous_poisson(ds: IrregularDataset, n_events: np.ndarray) -> float:
    """Log-likelihood per event of one constant rate, fitted to ``ds`` itself (MLE)."""
    spans = np.array([s.times[-1] - s.times[0] for s in ds.series])
    total_events, total_span = float(n_events.sum()), float(spans.sum())
    if total_events == 0 or total_span <= 0:
        return float("nan")
    rate = total_events / total_span
    per_series = n_events * math.log(rate) - rate * spans
    has = n_events > 0
    return float(np.mean(per_series[has] / n_events[has]))

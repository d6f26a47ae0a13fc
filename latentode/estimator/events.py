"""Event intensities and event draws of a fitted model with a Poisson head."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from latentode.data import LongFormat
from latentode.estimator.new_series import new_series_covariates
from latentode.estimator.predictor import (
    Predictor,
    _arrays_frame,
    check_num_samples,
    check_quantiles,
)
from latentode.estimator.seeds import as_seed, series_seed
from latentode.estimator.times import (
    HORIZON_POINTS,
    check_inputs_cover,
    prior_offsets,
    target_times,
    window_edge,
)
from latentode.heads.poisson import sample_thinning

__all__ = ["predict_intensity", "sample_events"]


def check_poisson(p: Predictor) -> None:
    if p.event_kinds is None:
        raise ValueError("this model has no event intensities; fit it with LatentODE(poisson=True)")


def kind_rows(p: Predictor, kinds: Any) -> list[int]:
    """Positions of the requested kinds among ``event_kinds_`` (all when None)."""
    known = p.event_kinds
    if kinds is None:
        return list(range(len(known)))
    if isinstance(kinds, str | bytes) or not isinstance(kinds, Sequence | np.ndarray):
        kinds = [kinds]
    unknown = [k for k in kinds if k not in known]
    if unknown:
        raise ValueError(
            f"unknown event kind(s) {unknown}; this model knows {known}. Pick kinds from "
            "event_kinds_"
        )
    if len(kinds) == 0:
        raise ValueError(f"`kinds` is empty; pick kinds from {known} or pass None for all")
    return [known.index(k) for k in kinds]


def predict_intensity(
    p: Predictor,
    df: pd.DataFrame,
    times: Any = None,
    *,
    horizon: Any = None,
    horizon_points: int = HORIZON_POINTS,
    quantiles: Sequence[float] = (0.05, 0.5, 0.95),
    num_samples: int = 100,
    kinds: Sequence[Hashable] | None = None,
    inputs: pd.DataFrame | None = None,
    static: pd.DataFrame | None = None,
    events: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """See :meth:`LatentODE.predict_intensity`."""
    check_poisson(p)
    levels = check_quantiles(quantiles)
    n_samples = check_num_samples(num_samples, "num_samples")
    rows_k = kind_rows(p, kinds)
    ds = p.encode_frame(df, events=events, inputs=inputs, static=static)
    user_times = target_times(p.fmt, ds, times, horizon, horizon_points)
    model = p.module.model
    scale = p.time_scaler.scale_
    columns = ["intensity", *[f"intensity_q{q:g}" for q in levels], "expected_count"]
    p.check_added_columns("predict_intensity", ["kind", *columns], with_features=False)
    frames = []
    n_kinds = len(p.event_kinds)
    width = 2 * model.n_features + (3 + len(levels)) * n_kinds
    carry = None  # a cut series' mean compensator at the end of its previous block
    for rows, block_times, block in p.blocks(user_times, n_samples, width):
        batch = ds.batch(list(rows)).to(p.device)
        times_b, padded, lengths = p.scaled_times(ds, rows, block_times)
        times_b = times_b.to(p.device)
        eps = p.latent_noise([ds.ids[i] for i in rows], n_samples, p.seed)
        with torch.no_grad():
            q, anchor = model.encode(batch)
            z0 = q.loc + q.scale * eps
            _, lam, integral = model.intensity(z0, times_b, anchor, batch.covariates)
        lam = p.check_finite(lam.double().cpu().numpy() / scale, "intensity")  # (S, B, T, K)
        integral = p.check_finite(integral.double().cpu().numpy(), "expected count")
        mean_integral = integral.mean(axis=0)  # (B, T, K); counts are its differences
        first = mean_integral[:, :1] if block == 0 else carry
        counts = np.diff(mean_integral, axis=1, prepend=first)
        carry = mean_integral[:, -1:]
        stats = [lam.mean(axis=0), *np.quantile(lam, levels, axis=0), counts]
        out = np.stack(stats, axis=-1)  # (B, T, K, n_columns)
        ids = [ds.ids[i] for i in rows]
        for k in rows_k:
            part = _arrays_frame(ids, padded, out[:, :, k, :], lengths, p.fmt, columns)
            part.insert(2, "kind", [p.event_kinds[k]] * len(part))
            frames.append(part.assign(_kind=k))
    out = pd.concat(frames, ignore_index=True).drop(columns="_kind")
    return _sort_long(out, p.fmt, "kind", [p.event_kinds[k] for k in rows_k])


def sample_events(
    p: Predictor,
    df: pd.DataFrame | None = None,
    *,
    t_start: Any = None,
    t_end: Any = None,
    n_samples: int = 1,
    random_state: int | np.random.Generator | None = None,
    kinds: Sequence[Hashable] | None = None,
    n_grid: int = 64,
    max_refinements: int = 6,
    inputs: pd.DataFrame | None = None,
    static: pd.DataFrame | None = None,
    events: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """See :meth:`LatentODE.sample_events`."""
    check_poisson(p)
    n = check_num_samples(n_samples, "n_samples")
    p.check_added_columns("sample_events", ["sample", "kind"], with_features=False)
    rows_k = kind_rows(p, kinds)
    seed = as_seed(random_state)
    fmt = p.fmt
    scale = p.time_scaler.scale_
    model = p.module.model
    latent = model.latent_dim
    covariates = None
    if df is None and p.covariate_schema is None and (inputs is not None or static is not None):
        raise ValueError("this model was fitted without covariates; leave `inputs`/`static` out")
    if df is not None:
        ds = p.encode_frame(df, events=events, inputs=inputs, static=static)
        starts = np.array([s.times[0] for s in ds.series])
        ends = np.array([s.times[-1] for s in ds.series])
        if t_start is not None:
            starts = window_edge(p.fmt, t_start, "t_start", ds)
        if t_end is not None:
            ends = window_edge(p.fmt, t_end, "t_end", ds)
        ids = list(ds.ids)
        check_inputs_cover(ds, starts, ends, "the event windows")
        batch = ds.batch().to(p.device)
        covariates = batch.covariates
        with torch.no_grad():
            q, _ = model.encode(batch)
        eps = p.latent_noise(ids, n, seed)  # (S, B, latent)
        z0 = (q.loc + q.scale * eps).reshape(-1, latent)  # sample-major
        origins = np.tile(ds.origins, n)
        windows = (np.tile(starts, n), np.tile(ends, n))
        traj_ids = ids * n
    else:
        if t_end is None:
            raise ValueError("give `t_end`: how long the new series last (time since their start)")
        start = 0.0 if t_start is None else float(prior_offsets(p.fmt, [t_start])[0])
        end = float(prior_offsets(p.fmt, [t_end])[0])
        ids = list(range(n))
        z0 = torch.randn(n, latent, generator=torch.Generator().manual_seed(seed)).to(p.device)
        origins = np.zeros(n)
        windows = (np.full(n, start), np.full(n, end))
        traj_ids = ids
        # every new series follows the one schedule given (a batch of one)
        covariates = new_series_covariates(p, np.array([start, end]), inputs, static)
    lo, hi = windows
    if (hi <= lo).any():
        raise ValueError(
            f"`t_end` must be after `t_start`; got windows ending at or before their start "
            f"(e.g. [{lo[hi <= lo][0]:g}, {hi[hi <= lo][0]:g}] in model time units)"
        )
    n_traj = z0.shape[0]
    samples = np.repeat(np.arange(n), n_traj // n)
    # one stream per (series, sample); prior draws get their own tag, not a series' stream
    tags = traj_ids if df is not None else [("prior", i) for i in traj_ids]
    rngs = [
        np.random.default_rng([series_seed(i, seed), int(k)])
        for i, k in zip(tags, samples, strict=True)
    ]

    def intensity(rows: np.ndarray, times: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, rows.size, 64):  # bounds the memory of one solve
            part = rows[start : start + 64]
            t = torch.as_tensor(times[start : start + 64], dtype=torch.float32, device=p.device)
            cov = {}
            if covariates is not None:  # trajectories are sample-major: row j is series j % B
                series = torch.as_tensor(part % covariates.static.shape[0], device=p.device)
                series = series.long()
                cov = {"covariates": covariates.select(series)}
            with torch.no_grad():
                z = model.decoder.trajectory(z0[part].unsqueeze(0), t, **cov)[0]
                out.append(model.poisson(z).double().cpu().numpy())
        return p.check_finite(np.concatenate(out), "intensity")

    result = sample_thinning(
        intensity,
        (lo - origins) / scale,
        (hi - origins) / scale,
        rngs,
        n_grid=n_grid,
        max_refinements=max_refinements,
    )
    wanted = np.asarray(rows_k)
    rows_out = []
    for j in range(n_traj):
        keep = np.isin(result.kinds[j], wanted)
        t_user = result.times[j][keep] * scale + origins[j]
        for t, k in zip(t_user, result.kinds[j][keep], strict=True):
            rows_out.append((int(samples[j]), traj_ids[j], float(t), int(k)))
    sample_col = np.array([r[0] for r in rows_out], dtype=np.int64)
    floats = np.array([r[2] for r in rows_out], dtype=np.float64)
    if df is not None:
        time_values = fmt.float_to_times(floats)
    elif fmt.time_kind == "numeric":
        time_values = floats
    else:
        unit = pd.Timedelta(1, unit=fmt.time_unit)
        time_values = pd.to_timedelta(floats * unit.value, unit="ns")
    id_values = [r[1] for r in rows_out]
    out = pd.DataFrame(
        {
            "sample": sample_col,
            fmt.id_col: pd.Series(id_values, dtype=object if df is not None else np.int64),
            fmt.time_col: np.asarray(time_values),
            "kind": pd.Series([p.event_kinds[r[3]] for r in rows_out], dtype=object),
        }
    )
    if df is not None and len(out):
        out[fmt.id_col] = out[fmt.id_col].astype(pd.Series(ds.ids).dtype)
    return out


def _sort_long(
    frame: pd.DataFrame, fmt: LongFormat, kind_col: str, kind_order: list[Hashable]
) -> pd.DataFrame:
    """Rows by series (in the frame's order of first appearance), time, then kind order."""
    series_pos = pd.factorize(frame[fmt.id_col])[0]
    kind_pos = frame[kind_col].map({k: j for j, k in enumerate(kind_order)}).to_numpy()
    time_key = fmt.times_to_float(frame[fmt.time_col])
    order = np.lexsort((kind_pos, time_key, series_pos))
    return frame.iloc[order].reset_index(drop=True)

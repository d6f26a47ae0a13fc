"""PBC sequential labs: held-out visits and the last visit, latent ODE against two baselines.

Data: ``survival::pbcseq`` (``latentode.data.real.load_pbcseq``): 312 patients, 1–16 visits at
irregular days, 12 channels (six skewed labs log-transformed) with their real missingness.

Protocol (seeded):

- Patients are split 80/20 into training and test patients. Features are standardised with
  the training patients' observed values; every MSE below is in those standard units, over
  the observed entries of the query visits.
- **Interpolation**: for each test patient with at least 3 visits, a random 30% of the interior
  visits (at least one) are held out; the other visits condition, the held-out ones are
  queried.
- **Extrapolation**: for each test patient with at least 2 visits, every visit but the last
  conditions and the last is queried.

Methods, in one run:

- **linear / LOCF**: per patient and feature, linear interpolation between the conditioning
  visits where that feature was measured; outside them the nearest measurement is carried
  (last value carried forward for the last visit); a feature never measured gets the
  training mean.
- **GRU-Δt RNN**: a GRU reading (value · mask, mask, time gap) trained one step ahead on the
  training patients (``benchmarks/spiral.py``'s ``DeltaTGRU``), keeping the epoch with the best
  error on a fifth of them held out; a query is predicted from the visits before it.
- **latent ODE**: :class:`latentode.LatentODE` at its defaults (only ``random_state`` set),
  fitted on them, keeping the best validation check on a fifth of the training patients; a
  query is the posterior-mean prediction given all conditioning visits. One model serves
  both tasks.

Run: ``python benchmarks/pbcseq.py`` (about 2 minutes on one core); needs ``pip install
"latentode[datasets]"``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from latentode import LatentODE
from latentode.data import IrregularDataset
from latentode.data.real import load_pbcseq

sys.path.insert(0, str(Path(__file__).parent))
from spiral import DeltaTGRU

YEAR = 365.25


def split_patients(frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    ids = np.random.default_rng(seed).permutation(frame["id"].unique())
    test = set(ids[: round(0.2 * ids.size)].tolist())
    is_test = frame["id"].isin(test)
    return frame[~is_test].reset_index(drop=True), frame[is_test].reset_index(drop=True)


def make_queries(test: pd.DataFrame, seed: int) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """(conditioning visits, query visits) for the interpolation and extrapolation tasks."""
    rng = np.random.default_rng(seed)
    interp_cond, interp_query, extrap_cond, extrap_query = [], [], [], []
    for _, visits in test.groupby("id", sort=True):
        n = len(visits)
        if n >= 2:
            extrap_cond.append(visits.iloc[:-1])
            extrap_query.append(visits.iloc[-1:])
        if n >= 3:
            interior = np.arange(1, n - 1)
            k = max(1, round(0.3 * interior.size))
            held = np.zeros(n, dtype=bool)
            held[rng.choice(interior, size=k, replace=False)] = True
            interp_cond.append(visits[~held])
            interp_query.append(visits[held])
    cat = lambda parts: pd.concat(parts, ignore_index=True)  # noqa: E731
    return {
        "interpolation": (cat(interp_cond), cat(interp_query)),
        "extrapolation": (cat(extrap_cond), cat(extrap_query)),
    }


def mse(prediction: pd.DataFrame, query: pd.DataFrame, features: list[str]) -> float:
    """Mean squared error over the observed entries of the query visits (standard units)."""
    truth = query[features].to_numpy()
    guess = prediction[features].to_numpy()
    seen = ~np.isnan(truth)
    return float(np.mean((guess[seen] - truth[seen]) ** 2))


def linear_locf(cond: pd.DataFrame, query: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    out = query[["id", "time"]].copy()
    for f in features:
        values = np.zeros(len(query))
        for row, (pid, t) in enumerate(zip(query["id"], query["time"], strict=True)):
            mine = cond[(cond["id"] == pid) & cond[f].notna()]
            if len(mine):  # np.interp carries the end values outside the measured span
                values[row] = np.interp(t, mine["time"], mine[f])
        out[f] = values  # 0 = the training mean in standard units
    return out


def fit_rnn(train: pd.DataFrame, features: list[str], epochs: int, seed: int) -> DeltaTGRU:
    """Adam on one-step-ahead error; the epoch with the best error on 20% held-out patients."""
    torch.manual_seed(seed)
    fit_part, val_part = split_patients(train, seed + 1)
    make = lambda f: IrregularDataset.from_frame(  # noqa: E731
        f.assign(time=f["time"] / YEAR), value_cols=features
    )
    data, val = make(fit_part), make(val_part)
    model = DeltaTGRU(len(features), hidden_dim=32)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    order = torch.Generator().manual_seed(seed)
    best, best_state = float("inf"), None
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(data), generator=order).split(32):
            loss = model.loss(data.batch(idx.tolist()))
            optimiser.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
        with torch.no_grad():
            score = float(model.eval().loss(val.batch()))
        if score < best:
            best, best_state = score, {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    return model.eval()


def rnn_predict(
    model: DeltaTGRU, cond: pd.DataFrame, query: pd.DataFrame, features: list[str]
) -> pd.DataFrame:
    """Each query from the conditioning visits before it (a forward-only RNN cannot look ahead)."""
    out = query[["id", "time"]].copy()
    rows = []
    for pid, t in zip(query["id"], query["time"], strict=True):
        past = cond[(cond["id"] == pid) & (cond["time"] < t)]
        if past.empty:
            rows.append(np.zeros(len(features)))
            continue
        ds = IrregularDataset.from_frame(
            past.assign(time=past["time"] / YEAR), value_cols=features, origin="global"
        )
        batch = ds.batch()
        scaled = ds.scaler.transform(np.array([t / YEAR]), ds.origins[0])
        with torch.no_grad():
            guess = model.predict(batch, torch.as_tensor(scaled, dtype=batch.times.dtype)[None])
        rows.append(guess[0, 0].numpy())
    out[features] = np.stack(rows)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)

    raw = load_pbcseq()
    features = [c for c in raw.columns if c not in ("id", "time")]
    train, test = split_patients(raw, args.seed)
    mean, std = train[features].mean(), train[features].std().replace(0, 1.0)
    train[features] = (train[features] - mean) / std
    test[features] = (test[features] - mean) / std
    tasks = make_queries(test, args.seed)
    print(
        f"pbcseq: {raw['id'].nunique()} patients, {len(raw)} visits, {len(features)} channels; "
        f"train {train['id'].nunique()} / test {test['id'].nunique()} patients"
    )
    for name, (_, query) in tasks.items():
        print(f"  {name}: {len(query)} query visits of {query['id'].nunique()} patients")

    results: dict[str, dict[str, float]] = {}
    results["linear / LOCF"] = {
        name: mse(linear_locf(cond, query, features), query, features)
        for name, (cond, query) in tasks.items()
    }

    start = time.perf_counter()
    rnn = fit_rnn(train, features, args.epochs, args.seed)
    rnn_seconds = time.perf_counter() - start
    results["GRU-Δt RNN"] = {
        name: mse(rnn_predict(rnn, cond, query, features), query, features)
        for name, (cond, query) in tasks.items()
    }

    start = time.perf_counter()
    model = LatentODE(random_state=args.seed).fit(train, time_unit=None)  # the defaults
    ode_seconds = time.perf_counter() - start
    scores = {}
    for name, (cond, query) in tasks.items():
        pred = model.predict(cond, times=query[["id", "time"]], num_samples=50)
        pred = query[["id", "time"]].merge(pred, on=["id", "time"], how="left")
        scores[name] = mse(pred, query, features)
    results["latent ODE"] = scores

    print(
        f"\nGRU-Δt: {args.epochs} epochs in {rnn_seconds:.1f} s; latent ODE at its defaults: "
        f"{model.n_steps_} steps (best epoch {model.best_epoch_}) in {ode_seconds:.1f} s\n"
    )
    print(f"{'method':<16} {'interpolation MSE':>18} {'extrapolation MSE':>18}")
    for method, row in results.items():
        print(f"{method:<16} {row['interpolation']:>18.3f} {row['extrapolation']:>18.3f}")


if __name__ == "__main__":
    main()

"""The baseline suite: does a latent ODE at its defaults beat the obvious?

For each data set, ``LatentODE`` is fitted **at its defaults** (only ``random_state`` is set)
on training series, on one thread, and then scored on test series it never saw, against simple
per-series baselines with :func:`latentode.evaluate.compare`, on three tasks:

- **interpolation**: 25% of each test series' interior points hidden; baselines: linear
  interpolation, LOCF (last value carried forward), the population mean curve;
- **extrapolation, last 2**: each test series' last 2 points hidden; baselines: LOCF, a linear
  trend through the last 3 points, the population mean curve;
- **extrapolation, last 30%**: every point in the last 30% of each test series' span hidden;
  same baselines.

The printed ratio is the model's MSE over the best baseline's on the same points (below 1: the
model wins), pooled over features after dividing each by its std in the test frame. Targets
(issue 12): geometric mean of the ratios ≤ 0.8 over the suite, no ratio above 1.2, each fit at
most 2 minutes on one thread. Bands (issue 13): the 90% predictive band covers 85–95% and the
50% band 45–55% of held-out points on every task, and the CRPS is at or below that of a
Gaussian band around linear interpolation (its leave-one-out error) on 80% of the tasks.

Data:

- five synthetic families (``latentode.data``, seeded): damped oscillators (2 features, 20%
  missing), absorption–elimination curves (pharmacokinetics), growth curves with per-subject
  level and slope, Lotka–Volterra predator–prey (2 features), sparse noisy sines (4–12 points).
  Each trains on the generator's default panel (100–200 series) and is tested on 100 fresh
  series of the same population;
- ``pbcseq``: PBC sequential labs, 312 patients, 12 channels with their real missingness;
- ``co2``: Mauna Loa weekly CO₂ cut into one-year windows (44 series, datetime times in days).
  The real sets split their series 80/20 (``holdout_series``).

Run: ``python benchmarks/baselines.py`` (about 15 minutes on one core); ``--datasets growth
co2`` for a subset; ``--params '{"max_steps": 500}'`` to try other estimator settings (the
table then is not "at the defaults" and says so). The table is also written as CSV to
``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from latentode import LatentODE
from latentode.data import make_dataset
from latentode.evaluate import compare, holdout_interior, holdout_last, holdout_series

SYNTHETIC = ("oscillators", "absorption", "growth", "lotka_volterra", "sparse_sines")
REAL = ("pbcseq", "co2")
TASKS = {
    "interpolation": lambda df, seed: (
        "interpolation",
        holdout_interior(df, 0.25, random_state=seed),
    ),
    "extrap. last 2": lambda df, seed: ("extrapolation", holdout_last(df, n=2)),
    "extrap. last 30%": lambda df, seed: ("extrapolation", holdout_last(df, fraction=0.3)),
}


N_TEST_SYNTHETIC = 100


def load(name: str, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Training and test frames of data set ``name``, and the extra ``fit`` arguments.

    Synthetic families train on the generator's default panel and test on 100 fresh series
    of the same population (another seed), so the ratios rest on enough points; real data
    sets split their series 80/20.
    """
    if name in SYNTHETIC:
        train = make_dataset(name, random_state=seed).observed
        test = make_dataset(name, n_series=N_TEST_SYNTHETIC, random_state=seed + 1)
        return train, test.observed, {"truth": test.truth}
    from latentode.data.real import load_co2, load_pbcseq

    if name == "pbcseq":
        frame, fit_kwargs = load_pbcseq(), {}
    elif name == "co2":
        frame, fit_kwargs = load_co2(window_years=1), {"time_unit": "D"}
    else:
        raise ValueError(f"unknown data set {name!r}; choose from {SYNTHETIC + REAL}")
    train, test = holdout_series(frame, 0.2, random_state=seed)
    return train, test, fit_kwargs


def _pooled_rmse(guess: pd.DataFrame, truth: pd.DataFrame, scale: dict) -> float:
    """RMSE over every observed entry of ``truth``, each feature divided by its scale."""
    merged = truth.merge(guess, on=["id", "time"], suffixes=("", "_guess"))
    errors = []
    for feature, std in scale.items():
        seen = merged[feature].notna()
        errors.append(((merged[feature] - merged[f"{feature}_guess"])[seen] / std) ** 2)
    return float(np.sqrt(pd.concat(errors).mean()))


def fit_diagnostics(model: LatentODE, context: pd.DataFrame, scale: dict, truth) -> dict:
    """How well the posterior fits its own conditioning points, beside the noise level.

    ``recon_rmse``: the posterior mean at the conditioning points against their observed
    values; ``noise_rmse``: the observation noise (synthetic data only: observed minus the
    noise-free truth at the same points); ``recon_truth_rmse``: the posterior mean against that
    truth. A posterior that fits has ``recon_rmse`` near ``noise_rmse`` and ``recon_truth_rmse``
    well below it. All in units of each feature's std.
    """
    fitted = model.predict(context, num_samples=20)
    out = {"recon_rmse": _pooled_rmse(fitted, context, scale)}
    if truth is not None:
        clean = truth.merge(context[["id", "time"]], on=["id", "time"])
        out["noise_rmse"] = _pooled_rmse(clean, context, scale)
        out["recon_truth_rmse"] = _pooled_rmse(fitted, clean, scale)
    return out


def run(name: str, seed: int, params: dict) -> list[dict]:
    train, test, fit_kwargs = load(name, seed)
    truth = fit_kwargs.pop("truth", None)
    model = LatentODE(random_state=seed, **params)
    start = time.perf_counter()
    model.fit(train, **fit_kwargs)
    seconds = time.perf_counter() - start
    rows = []
    for label, make in TASKS.items():
        task, split = make(test, seed)
        table = compare(model, test, task, split=split, random_state=seed)
        if label == "interpolation":
            diagnostics = fit_diagnostics(model, split.context, table.attrs["scale"], truth)
        pooled = table[table["feature"] == "all"].set_index("method")
        ours = pooled.loc["latentode"]
        best = table.attrs["best_baseline"]["all"]
        gauss = pooled.loc["linear"]  # linear interpolation with its Gaussian band
        rows.append(
            {
                "dataset": name,
                "task": label,
                "n_train": train["id"].nunique(),
                "n_test": test["id"].nunique(),
                "n_points": int(ours["n"]),
                "model_rmse": float(ours["rmse"]),
                "best_baseline": best,
                "baseline_rmse": float(pooled.loc[best, "rmse"]),
                "ratio": float(ours["ratio"]),
                "coverage_50": float(ours["coverage_50"]),
                "coverage_90": float(ours["coverage_90"]),
                "crps": float(ours["crps"]),
                "crps_linear_gaussian": float(gauss["crps"]),
                "crps_ratio": float(ours["crps"] / gauss["crps"]),
                "linear_gaussian_coverage_90": float(gauss["coverage_90"]),
                "fit_seconds": seconds,
                "steps": int(model.n_steps_),
                "epochs": int(model.n_epochs_),
                **diagnostics,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=[*SYNTHETIC, *REAL])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--params", default="{}", help="estimator parameters as JSON")
    parser.add_argument("--out", default="benchmarks/out/baselines.csv")
    args = parser.parse_args(argv)
    params = json.loads(args.params)
    torch.set_num_threads(1)
    settings = "defaults" if not params else f"NOT the defaults: {params}"
    print(f"LatentODE at {settings}; seed {args.seed}; torch {torch.__version__}, 1 thread")
    rows = []
    for name in args.datasets:
        for row in run(name, args.seed, params):
            rows.append(row)
            print(
                f"{row['dataset']:>15} {row['task']:>17}  model rmse {row['model_rmse']:.4f}  "
                f"{row['best_baseline']:>6} {row['baseline_rmse']:.4f}  "
                f"ratio {row['ratio']:.3f}  cover50 {row['coverage_50']:.2f}  "
                f"cover90 {row['coverage_90']:.2f}  crps/gauss {row['crps_ratio']:.3f}  "
                f"fit {row['fit_seconds']:.0f}s ({row['steps']} steps)",
                flush=True,
            )
        noise = f", noise {row['noise_rmse']:.3f}" if "noise_rmse" in row else ""
        print(f"{'':>15} posterior at its own points: rmse {row['recon_rmse']:.3f}{noise}")
    table = pd.DataFrame(rows)
    ratios = table["ratio"].to_numpy()
    geo = float(np.exp(np.mean(np.log(ratios))))
    print()
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print()
    print(
        f"geometric mean of model/best-baseline MSE: {geo:.3f} (target <= 0.8); worst "
        f"{ratios.max():.3f} (target <= 1.2); tasks above 1.2: {int((ratios > 1.2).sum())} of "
        f"{ratios.size}; slowest fit {table['fit_seconds'].max():.0f} s (target <= 120 s)"
    )
    c90, c50 = table["coverage_90"], table["coverage_50"]
    in90 = int(c90.between(0.85, 0.95).sum())
    in50 = int(c50.between(0.45, 0.55).sum())
    crps_wins = int((table["crps_ratio"] <= 1.0).sum())
    print(
        f"90% band coverage in [0.85, 0.95] on {in90} of {len(table)} tasks (range "
        f"{c90.min():.2f}-{c90.max():.2f}); 50% band in [0.45, 0.55] on {in50} (range "
        f"{c50.min():.2f}-{c50.max():.2f}); CRPS at or below the Gaussian band of linear "
        f"interpolation on {crps_wins} of {len(table)} tasks (target: 80%)"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    print(f"wrote {out}")
    return 0 if math.isfinite(geo) else 1


if __name__ == "__main__":
    sys.exit(main())

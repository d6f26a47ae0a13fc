"""Quickstart: a messy irregular DataFrame in; interpolation, extrapolation, samples, a plot out.

Clinical-style data: each patient measured at their own odd hours, a lab missing at random.
The model is tiny and trained briefly so this runs in seconds; raise ``max_epochs`` (and the
sizes) for a real fit.

Run: python examples/quickstart.py [--out FOLDER]   (the plot goes to FOLDER/quickstart.png,
default the current folder; the script prints where)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from latentode import LatentODE


def make_labs(n_patients: int = 40, seed: int = 0) -> pd.DataFrame:
    """Two labs per patient at irregular times over ~10 days; crp missing half the time."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        hours = np.sort(rng.choice(240, size=rng.integers(6, 14), replace=False))
        when = pd.Timestamp("2024-05-01 06:00") + pd.to_timedelta(hours, unit="h")
        rate, phase = rng.uniform(0.02, 0.05), rng.uniform(0, 2 * np.pi)
        hb = 13 + 1.5 * np.sin(rate * hours + phase) + rng.normal(0, 0.1, hours.size)
        crp = 20 + 8 * np.cos(rate * hours + phase) + rng.normal(0, 0.5, hours.size)
        crp[rng.random(hours.size) < 0.5] = np.nan
        rows.append(pd.DataFrame({"patient": f"p{p:03d}", "taken": when, "hb": hb, "crp": crp}))
    return pd.concat(rows, ignore_index=True)


def main(max_epochs: int = 3, out: str | Path = ".") -> None:
    labs = make_labs()
    model = LatentODE(
        latent_dim=4,
        encoder_hidden=16,
        decoder_width=32,
        decoder_depth=1,
        max_epochs=max_epochs,
        random_state=0,
    )
    model.fit(labs, id_col="patient", time_col="taken", time_unit="h")

    # Interpolate and extrapolate: one grid of datetimes for every patient ...
    grid = pd.date_range("2024-05-01 06:00", periods=13, freq="24h")
    pred = model.predict(labs, times=grid, num_samples=50)
    print(pred.head(3).to_string(index=False))

    # ... or 20 points up to 48 hours past each patient's last measurement.
    ahead = model.predict(labs, horizon=pd.Timedelta(hours=48), num_samples=50)
    print(f"forecast rows: {len(ahead)}; columns: {list(ahead.columns)}")

    # Whole trajectories: new patients from the prior, or paths given what was observed.
    new = model.sample(3, pd.to_timedelta([0, 24, 48, 72], unit="h"), random_state=0)
    paths = model.sample(5, grid, df=labs[labs["patient"] == "p000"], random_state=0)
    print(f"{new['sample'].nunique()} new series, {paths['sample'].nunique()} posterior paths")
    print(f"held-out score (log-likelihood per value): {model.score(make_labs(10, seed=1)):.2f}")

    with tempfile.TemporaryDirectory() as folder:
        model.save(Path(folder) / "labs-model")
        again = LatentODE.load(Path(folder) / "labs-model")
        same = again.predict(labs, times=grid, num_samples=50).equals(pred)
        print(f"saved and loaded: identical predictions {same}")
    try:
        from latentode.plot import plot_series
    except ImportError:
        print("no plot: install matplotlib with pip install 'latentode[plot]'")
        return
    fig = plot_series(labs, pred, samples=paths, id_col="patient", time_col="taken", max_series=3)
    path = Path(out) / "quickstart.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    print(f"plot written to {path.resolve()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=".", help="folder for quickstart.png (default: here)")
    main(out=parser.parse_args().out)

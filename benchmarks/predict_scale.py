"""How prediction scales: peak memory and seconds against the number of series, and batch coupling.

Each size runs in a fresh process (so peak RSS is that size's own) and predicts series that
each have their own 100 irregular times, ``num_samples`` posterior samples, with a model
fitted briefly at the default architecture. It prints one row per size and, last, one JSON
line with every number; then whether a series predicted alone agrees with the same series
predicted among 40 others.

Targets (issue 15): 10,000 series x 100 own times x 100 samples in at most 1 GiB peak RSS;
peak RSS flat (at most 1.3x) from 100 to 10,000 series; alone vs among 40 others within 1e-6
relative (float32).

Run:
    python benchmarks/predict_scale.py                       # 100, 1000, 10000 series
    python benchmarks/predict_scale.py --series 100 1000     # a quicker look
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
import numpy as np, pandas as pd, torch
torch.set_num_threads(1)
from latentode import LatentODE
n_series, n_times, n_samples = (int(a) for a in sys.argv[1:4])
folder = sys.argv[4]
model = LatentODE.load(folder)
rng = np.random.default_rng(0)
rows = []
for i in range(n_series):
    t = np.sort(rng.uniform(0.0, 10.0, n_times))
    x = np.sin(t + i) + 0.1 * rng.normal(size=n_times)
    rows.append(pd.DataFrame({"id": i, "time": t, "x": x}))
df = pd.concat(rows, ignore_index=True)
start = time.perf_counter()
out = model.predict(df, num_samples=n_samples)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(json.dumps({"series": n_series, "rows": len(out), "seconds": seconds, "peak_rss_gib": peak}))
"""


def _fit(folder: Path) -> None:
    import warnings

    import numpy as np
    import pandas as pd

    from latentode import LatentODE

    rng = np.random.default_rng(1)
    rows = []
    for i in range(64):
        t = np.sort(rng.uniform(0.0, 10.0, 30))
        rows.append(pd.DataFrame({"id": i, "time": t, "x": np.sin(t + i)}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        LatentODE(max_steps=30, random_state=0).fit(pd.concat(rows)).save(folder)


def _coupling(folder: Path) -> float:
    """One series' predictions alone vs among 40 others: max |difference| / max |value|."""
    import numpy as np
    import pandas as pd

    from latentode import LatentODE

    model = LatentODE.load(folder)
    rng = np.random.default_rng(2)
    rows = []
    for i in range(41):
        t = np.sort(rng.uniform(0.0, 10.0, 50))
        rows.append(pd.DataFrame({"id": i, "time": t, "x": np.cos(0.7 * t + i)}))
    df = pd.concat(rows, ignore_index=True)
    alone = model.predict(df[df["id"] == 0], num_samples=20, interval="mean")
    among = model.predict(df, num_samples=20, interval="mean")
    among = among[among["id"] == 0].reset_index(drop=True)
    a, b = alone.iloc[:, 2:].to_numpy(), among.iloc[:, 2:].to_numpy()
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(a))), 1e-12))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, nargs="+", default=[100, 1000, 10_000])
    parser.add_argument("--times", type=int, default=100)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per size")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        _fit(folder)
        print(f"{'series':>8} {'times':>6} {'samples':>8} {'seconds':>9} {'peak RSS GiB':>13}")
        for n in args.series:
            argv_child = [str(n), str(args.times), str(args.samples), str(folder)]
            try:
                done = subprocess.run(
                    [sys.executable, "-c", CHILD, *argv_child],
                    capture_output=True,
                    text=True,
                    timeout=args.timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                print(
                    f"{n:>8} {args.times:>6} {args.samples:>8}   timed out after {args.timeout:g} s"
                )
                continue
            if done.returncode != 0:
                print(f"{n:>8} failed (exit {done.returncode}): {done.stderr.strip()[-300:]}")
                continue
            row = json.loads(done.stdout.strip().splitlines()[-1])
            results.append(row)
            print(
                f"{n:>8} {args.times:>6} {args.samples:>8} {row['seconds']:>9.1f} "
                f"{row['peak_rss_gib']:>13.2f}"
            )
        coupling = _coupling(folder)
    print(f"alone vs among 40 others: max relative difference {coupling:.2e} (target <= 1e-6)")
    rss = [r["peak_rss_gib"] for r in results]
    summary = {
        "times": args.times,
        "samples": args.samples,
        "results": results,
        "rss_ratio_last_first": rss[-1] / rss[0] if len(rss) > 1 else None,
        "coupling_max_rel": coupling,
        "parent_peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    started = time.perf_counter()
    code = main()
    print(f"total {time.perf_counter() - started:.0f} s", file=sys.stderr)
    raise SystemExit(code)

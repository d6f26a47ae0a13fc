"""How prediction scales: peak memory and seconds against the number of series, and batch coupling.

Each size runs in a fresh process (so peak RSS is that size's own) and predicts series that
each have their own 100 irregular times, ``num_samples`` posterior samples, with a model
fitted briefly at the default architecture. It prints one row per size and, last, one JSON
line with every number; then whether a series predicted alone agrees with the same series
predicted among 40 others.

Targets (issue 15): 10,000 series x 100 own times x 100 samples in at most 1 GiB peak RSS;
peak RSS flat (at most 1.3x) from 100 to 10,000 series; alone vs among 40 others within 1e-6
relative (float32).

``--baseline-src DIR`` also runs every size with the latentode in the source tree ``DIR``
(e.g. ``git worktree add ../before <commit>``), right after this one, on the same model (fitted
by the baseline, so that both versions can read it), and prints the ratio of seconds: the
"2x faster than today" target compares with the tree the issue was filed against.

Run:
    python benchmarks/predict_scale.py                       # 100, 1000, 10000 series
    python benchmarks/predict_scale.py --series 100 1000     # a quicker look
    python benchmarks/predict_scale.py --baseline-src ../before
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, resource, sys, time, warnings
import latentode
print("latentode from", latentode.__file__, file=sys.stderr)
warnings.simplefilter("ignore")
import numpy as np, pandas as pd, torch
torch.set_num_threads(1)
from latentode import LatentODE
n_series, n_times, n_samples = (int(a) for a in sys.argv[1:4])
folder = sys.argv[4]
model = LatentODE.load(folder)
rng = np.random.default_rng(0)
# built whole, not as one small frame per series, whose garbage would count in the peak
t = np.sort(rng.uniform(0.0, 10.0, (n_series, n_times)), axis=1)
x = np.sin(t + np.arange(n_series)[:, None]) + 0.1 * rng.normal(size=t.shape)
ids = np.repeat(np.arange(n_series), n_times)
df = pd.DataFrame({"id": ids, "time": t.ravel(), "x": x.ravel()})
del t, x
start = time.perf_counter()
out = model.predict(df, num_samples=n_samples)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(json.dumps({"series": n_series, "rows": len(out), "seconds": seconds, "peak_rss_gib": peak}))
"""


FIT = """
import sys
sys.path.insert(0, sys.argv[2])
import predict_scale
from pathlib import Path
predict_scale._fit(Path(sys.argv[1]))
"""


def _source_env(src: Path) -> dict[str, str]:
    """The environment of a child that imports latentode from the source tree ``src``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH", "")]))
    return env


def _run_size(src: Path, argv_child: list[str], timeout: float) -> dict | str:
    """One size in a fresh process importing latentode from ``src``: its JSON, or why not.

    The child runs in the model's folder's parent, so that no ``latentode`` in the current
    directory shadows ``src``.
    """
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, *argv_child],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=_source_env(src),
            cwd=Path(argv_child[-1]).parent,
        )
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout:g} s"
    if done.returncode != 0:
        return f"failed (exit {done.returncode}): {done.stderr.strip()[-300:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


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
    import latentode

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, nargs="+", default=[100, 1000, 10_000])
    parser.add_argument("--times", type=int, default=100)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per size")
    parser.add_argument(
        "--baseline-src", type=Path, default=None, help="a source tree of another latentode"
    )
    args = parser.parse_args(argv)
    here = Path(latentode.__file__).resolve().parents[1]
    baseline = args.baseline_src.resolve() if args.baseline_src else None
    if baseline is not None and not (baseline / "latentode" / "__init__.py").is_file():
        parser.error(f"--baseline-src {baseline} holds no latentode package")
    results, before = [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        fitted = subprocess.run(
            [sys.executable, "-c", FIT, str(folder), str(Path(__file__).resolve().parent)],
            capture_output=True,
            text=True,
            check=False,
            env=_source_env(baseline or here),
            cwd=tmp,
        )
        if fitted.returncode != 0:
            print(f"fitting the model failed: {fitted.stderr.strip()[-500:]}")
            return 1
        head = f"{'series':>8} {'times':>6} {'samples':>8} {'seconds':>9} {'peak RSS GiB':>13}"
        if baseline is not None:
            head += f" {'baseline s':>11} {'baseline GiB':>13} {'speed-up':>9}"
        print(head)
        for n in args.series:
            argv_child = [str(n), str(args.times), str(args.samples), str(folder)]
            row = _run_size(here, argv_child, args.timeout)
            line = f"{n:>8} {args.times:>6} {args.samples:>8} "
            if isinstance(row, str):
                print(line + row)
                continue
            results.append(row)
            line += f"{row['seconds']:>9.1f} {row['peak_rss_gib']:>13.2f}"
            if baseline is not None:
                old = _run_size(baseline, argv_child, args.timeout)
                if isinstance(old, str):
                    line += f"  baseline {old}"
                else:
                    before.append(old)
                    line += (
                        f" {old['seconds']:>11.1f} {old['peak_rss_gib']:>13.2f} "
                        f"{old['seconds'] / row['seconds']:>8.2f}x"
                    )
            print(line, flush=True)
        coupling = _coupling(folder)
    print(f"alone vs among 40 others: max relative difference {coupling:.2e} (target <= 1e-6)")
    rss = [r["peak_rss_gib"] for r in results]
    if len(rss) > 1:
        ratio = rss[-1] / rss[0]
        print(f"peak RSS {rss[-1]:.2f} / {rss[0]:.2f} GiB = {ratio:.2f}x (target <= 1.3x)")
    summary = {
        "times": args.times,
        "samples": args.samples,
        "results": results,
        "baseline_src": None if baseline is None else str(baseline),
        "baseline_results": before,
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

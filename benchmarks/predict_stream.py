"""`latentode predict` on a table larger than a memory cap allows: in chunks, and in one piece.

Protocol (the knobs are command-line options; defaults in brackets)
-------------------------------------------------------------------
Data. ``--series`` [30,000] series of ``--points`` [10] irregular times each in [0, 10]
(300,000 rows), ``--features`` [4] noisy sines with 20% of the values missing, ids as text
(``s0000042``). Written twice: a CSV with the rows of each series together, and a Parquet
dataset hive-partitioned by a ``shard`` column (16 folders ``shard=k/``, each a run of whole
series; the model does not read ``shard``).

Model. A small latent ODE fitted for one epoch on ``--train-series`` [64] series of the same
generator, saved.

Runs. Each is a fresh ``latentode predict`` process (``--num-samples`` [10]; with
``--times-points K`` at a grid of K times instead of each series' own; ``--suffix`` [.csv] of
the output) with one thread for OpenMP/MKL/OpenBLAS and ``MALLOC_ARENA_MAX=2``, so that its
address space repeats from run to run (to within a few MiB); its memory is capped with
``resource.setrlimit(RLIMIT_AS, cap)`` before it starts.

1. Floor: predict on the first 10 series, uncapped. Its peak address space (``VmPeak``) is
   what importing torch, Lightning and the model and predicting one small chunk cost.
2. The cap: the floor + ``--headroom-mb`` [200], or ``--cap-mb``.
3. Under the cap: streaming the CSV (``--chunk-series`` [100]), streaming the Parquet
   dataset, and the CSV in one piece (for contrast; it is expected to fail).
   ``--uncapped`` adds the one-piece run without the cap, for its peak.

Each run prints whether it finished (or its last error line), the seconds, the peak resident
set the process reported at exit (``VmHWM``), ``ru_maxrss`` of the child from ``wait4`` (Linux
starts it at the parent's resident set at fork, so it is a floor, not the child's own peak,
when the parent is larger: the parent here imports no torch) and its peak address space
(``VmPeak``, what the cap limits).

Why chunks of 100 series: the decoder still solves a block of series on the union of their
times (a tensor quadratic in the block; the estimator cuts blocks at 200 series), so a chunk
below 200 series also shrinks that block. At 1000 series a chunk needs about 100 MiB more
(streaming 500,000 rows peaked at VmPeak = floor + 207 MiB, one piece at floor + 489 MiB).

Run: ``python benchmarks/predict_stream.py`` (about two minutes on two cores), or
``--series 5000`` for a quick look. ``tests/test_cli_streaming.py`` runs a small version.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
MB = 2**20

# The child reports its own peaks at exit (also after an uncaught MemoryError).
_CHILD = r"""
import atexit, sys
def _report():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(("VmPeak", "VmHWM")):
                sys.stderr.write("@@" + line)
atexit.register(_report)
from latentode.cli import main
sys.exit(main(sys.argv[1:]))
"""

# A small model, fitted for one epoch: what is measured is reading and writing, not the model.
FIT_SETTINGS = {
    "latent_dim": 4,
    "encoder_hidden": 8,
    "decoder_width": 16,
    "max_epochs": 1,
    "random_state": 0,
    "verbose": False,
}

_FIT = r"""
import json, sys
import pandas as pd
from latentode.estimator import LatentODE
df = pd.read_csv(sys.argv[1], dtype={"id": str})
LatentODE(**json.loads(sys.argv[3])).fit(df).save(sys.argv[2])
"""


@dataclass(frozen=True)
class Run:
    """One ``latentode`` process: exit status, seconds, peaks in MiB, its last error line."""

    name: str
    returncode: int
    seconds: float
    hwm_mb: float | None  # VmHWM the child reported at exit (None: it died without a word)
    maxrss_mb: float  # ru_maxrss from wait4
    vmpeak_mb: float | None
    error: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def child_env() -> dict[str, str]:
    """One thread and two malloc arenas: a repeatable address space, run after run."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {
        **os.environ,
        "PYTHONPATH": path,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MALLOC_ARENA_MAX": "2",
    }


def run_cli(name: str, argv: list[str], cap_bytes: int | None = None) -> Run:
    """``latentode *argv`` in a fresh process, its address space capped at ``cap_bytes``."""

    def limit() -> None:  # runs in the child, before exec
        if cap_bytes is not None:
            resource.setrlimit(resource.RLIMIT_AS, (cap_bytes, cap_bytes))

    start = time.perf_counter()
    with tempfile.TemporaryFile("w+", encoding="utf-8") as err:
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, *argv],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=child_env(),
            preexec_fn=limit,  # setrlimit must run in the child, before exec
        )
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        err.seek(0)
        lines = err.read().splitlines()
    peaks = {
        line[2:].split(":")[0]: int(line.split()[1]) / 1024 for line in lines if line[:2] == "@@"
    }
    messages = [line for line in lines if line[:2] != "@@" and line.strip()]
    error = "" if child.returncode == 0 else (messages[-1] if messages else "(no message)")
    return Run(
        name,
        child.returncode,
        seconds,
        peaks.get("VmHWM"),
        usage.ru_maxrss / 1024,
        peaks.get("VmPeak"),
        error,
    )


def make_frame(n_series: int, n_points: int, n_features: int, seed: int = 0) -> pd.DataFrame:
    """Irregular noisy sines: ``n_series * n_points`` rows, the rows of a series together."""
    rng = np.random.default_rng(seed)
    times = np.sort(rng.uniform(0.0, 10.0, (n_series, n_points)), axis=1)  # (N, P)
    phase = rng.uniform(0.0, 2 * np.pi, (n_series, 1, n_features))  # (N, 1, F)
    values = np.sin(times[:, :, None] + phase) + 0.1 * rng.standard_normal(phase.shape)
    values[rng.random(values.shape) < 0.2] = np.nan  # (N, P, F)
    frame = pd.DataFrame(
        {"id": np.repeat([f"s{i:07d}" for i in range(n_series)], n_points), "time": times.ravel()}
    )
    for j in range(n_features):
        frame[f"x{j}"] = values[:, :, j].ravel()
    return frame


def write_data(
    folder: Path, n_series: int, n_points: int, n_features: int, n_train: int = 64
) -> dict[str, Path]:
    """The CSV, the Parquet dataset (16 shards), a 10-series CSV and ``n_train`` series to fit
    on."""
    frame = make_frame(n_series, n_points, n_features)
    paths = {
        "csv": folder / "series.csv",
        "parquet": folder / "series-dataset",
        "floor": folder / "first-10.csv",
        "train": folder / "train.csv",
    }
    frame.to_csv(paths["csv"], index=False)
    frame.iloc[: 10 * n_points].to_csv(paths["floor"], index=False)
    shards = np.minimum(np.arange(n_series) * 16 // n_series, 15)  # (N,) runs of whole series
    try:
        frame.assign(shard=np.repeat(shards, n_points)).to_parquet(
            paths["parquet"], partition_cols=["shard"], index=False
        )
    except ImportError:  # pragma: no cover - pyarrow missing: the CSV runs alone
        del paths["parquet"]
    make_frame(n_train, n_points, n_features, seed=1).to_csv(paths["train"], index=False)
    return paths


def fit_model(train: Path, out: Path) -> Path:
    settings = json.dumps(FIT_SETTINGS)
    subprocess.run(
        [sys.executable, "-c", _FIT, str(train), str(out), settings], check=True, env=child_env()
    )
    return out


def predict_args(model: Path, data: Path, out: Path, args: argparse.Namespace) -> list[str]:
    argv = ["predict", "--model", str(model), "--data", str(data), "--out", str(out)]
    argv += ["--num-samples", str(args.num_samples), "--overwrite", "--quiet"]
    if args.times_points:
        grid = np.linspace(0.0, 10.0, args.times_points)
        argv += ["--times", ",".join(f"{t:.6g}" for t in grid)]
    return argv


def measure(args: argparse.Namespace, folder: Path) -> tuple[float, list[Run]]:
    """The cap (bytes) and the runs, as the module docstring says."""
    paths = write_data(folder, args.series, args.points, args.features, args.train_series)
    model = fit_model(paths["train"], folder / "model")
    out = folder / f"pred{args.suffix}"
    floor = run_cli("floor (10 series)", predict_args(model, paths["floor"], out, args))
    if not floor.ok or floor.vmpeak_mb is None:
        raise SystemExit(f"the floor run failed: {floor.error}")
    cap_mb = args.cap_mb or floor.vmpeak_mb + args.headroom_mb
    cap = int(cap_mb * MB)
    chunked = ["--chunk-series", str(args.chunk_series)]
    runs = [floor]
    runs.append(run_cli("stream CSV", predict_args(model, paths["csv"], out, args) + chunked, cap))
    if "parquet" in paths:
        runs.append(
            run_cli(
                "stream Parquet dataset",
                predict_args(model, paths["parquet"], out, args) + chunked,
                cap,
            )
        )
    runs.append(run_cli("one piece CSV", predict_args(model, paths["csv"], out, args), cap))
    if args.uncapped:
        runs.append(run_cli("one piece CSV, no cap", predict_args(model, paths["csv"], out, args)))
    return cap, runs


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def report(args: argparse.Namespace, cap: float, runs: list[Run]) -> str:
    rows = args.series * args.points
    times = f"a grid of {args.times_points} times" if args.times_points else "their own times"
    lines = [
        f"latentode predict on {args.series:,} series x {args.points} times = {rows:,} rows, "
        f"{args.features} features, {args.num_samples} samples, predicted at {times}; "
        f"--chunk-series {args.chunk_series}",
        f"cap (RLIMIT_AS): {cap / MB:,.0f} MiB = floor VmPeak {runs[0].vmpeak_mb:,.0f} MiB + "
        f"{cap / MB - runs[0].vmpeak_mb:,.0f} MiB headroom",
        f"{'run':<24} {'result':<8} {'seconds':>8} {'peak RSS':>9} {'maxrss':>8} "
        f"{'VmPeak':>8}  (MiB)",
    ]
    for run in runs:
        lines.append(
            f"{run.name:<24} {'ok' if run.ok else 'FAILED':<8} {run.seconds:>8.1f} "
            f"{_mb(run.hwm_mb):>9} {_mb(run.maxrss_mb):>8} {_mb(run.vmpeak_mb):>8}"
            + (f"  {run.error[:120]}" if not run.ok else "")
        )
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", type=int, default=30_000)
    parser.add_argument("--points", type=int, default=10)
    parser.add_argument("--features", type=int, default=4)
    parser.add_argument("--train-series", type=int, default=64)
    parser.add_argument("--num-samples", type=int, default=10)
    parser.add_argument("--times-points", type=int, default=0, help="0: each series' own times")
    parser.add_argument("--chunk-series", type=int, default=100)
    parser.add_argument("--headroom-mb", type=float, default=200.0)
    parser.add_argument("--cap-mb", type=float, help="the cap itself (default: floor + headroom)")
    parser.add_argument("--suffix", choices=(".csv", ".parquet"), default=".csv")
    parser.add_argument("--uncapped", action="store_true", help="also run one piece uncapped")
    parser.add_argument("--keep", type=Path, help="write the files here and keep them")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        cap, runs = measure(args, args.keep)
    else:
        folder = Path(tempfile.mkdtemp(prefix="latentode-stream-"))
        try:
            cap, runs = measure(args, folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    print(report(args, cap, runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())

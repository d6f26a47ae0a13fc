"""Ours against the published reference implementation (Rubanova et al. 2019), in the same run.

The reference code is not part of latentode: give a checkout of it with ``--reference-dir``
(e.g. ``git clone https://github.com/YuliaRubanova/latent_ode ../latent_ode``). This script:

1. asks the reference's own generator for its periodic dataset (``run_models.py --dataset
   periodic -n N -l 10 -s 50`` with its seed), and saves the series it drew;
2. trains the reference (``run_models.py --latent-ode``, its defaults otherwise: ODE-RNN
   encoder, dopri5 1e-3/1e-4 decoder, K = 3, batch 50, Adamax) and ours
   (``benchmarks/periodic.py --data``, the same settings) on those series, side by side: both
   processes start together, one thread each, so the machine's load falls on both alike;
3. prints, per phase (epochs 1–10 and 11–E), the median seconds per iteration and decoder NFE
   per iteration of each and their ratio, then each one's test MSE at equal epochs, and the
   time to accuracy: the seconds of training iterations (test passes left out) ours needs to
   reach the reference's final test MSE, against the reference's whole run.

Ours runs at the reference's settings, including two that are not model settings: the data's
own time units (``--time-scale 1``; our data module would otherwise map the longest span to
one model time unit, which on this data learns only each series' mean for 30 epochs) and an
80/20 split with no validation series (``--val-fraction 0``), so both take 16 iterations an
epoch.

The reference's iterations are timed and counted from outside its code: its optimiser's
``step`` marks the end of each iteration, and its ``odeint`` (the decoder's dopri5 calls while
gradients are on) is wrapped to count field evaluations. Its test MSE is read from its log.
Its ``run_models.py`` imports ``torchvision.datasets.utils``; a stub of that module is put on
the reference's path only (on ours it would break torchmetrics). The reference's test series
are its last 20%; ours are a seeded random 20% of the same series.

Run: ``python benchmarks/reference.py --reference-dir ../latent_ode --epochs 30``
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

# Run inside the reference's process: times its iterations, counts its decoder's evaluations,
# and (with --dump) saves the series its generator drew and stops before training.
REFERENCE_CHILD = r"""
import json, os, runpy, sys, time
reference, out, dump = sys.argv[1], sys.argv[2], sys.argv[3] == "dump"
sys.argv = ["run_models.py", *sys.argv[4:]]
sys.path.insert(0, reference)
import numpy as np
import torch
torch.set_num_threads(1)
import generate_timeseries
import lib.diffeq_solver as diffeq_solver
import lib.utils as utils

drawn = {}
sample = generate_timeseries.Periodic_1d.sample_traj

def sample_traj(self, time_steps, *args, **kwargs):
    values = sample(self, time_steps, *args, **kwargs)
    drawn["times"], drawn["values"] = time_steps.cpu().numpy(), values.cpu().numpy()
    return values

generate_timeseries.Periodic_1d.sample_traj = sample_traj
split = utils.split_train_test

def split_train_test(data, train_fraq=0.8):
    if dump:
        np.savez(out, times=drawn["times"], values=drawn["values"])
        raise SystemExit(0)
    return split(data, train_fraq=train_fraq)

utils.split_train_test = split_train_test
steps, nfe, count = [], [], [0]
odeint = diffeq_solver.odeint

def counting_odeint(func, y0, t, **kwargs):
    if kwargs.get("method") == "dopri5" and torch.is_grad_enabled():
        def counted(s, y):
            count[0] += 1
            return func(s, y)
        return odeint(counted, y0, t, **kwargs)
    return odeint(func, y0, t, **kwargs)

diffeq_solver.odeint = counting_odeint
step = torch.optim.Adamax.step

def timed_step(self, *args, **kwargs):
    result = step(self, *args, **kwargs)
    steps.append(time.perf_counter())
    nfe.append(count[0])
    count[0] = 0
    return result

torch.optim.Adamax.step = timed_step
start = time.perf_counter()
try:
    runpy.run_path(os.path.join(reference, "run_models.py"), run_name="__main__")
finally:
    if not dump:
        with open(out, "w") as f:
            json.dump({"start": start, "steps": steps, "nfe": nfe}, f)
"""


def _stub(folder: Path) -> Path:
    """A ``torchvision.datasets.utils`` that only the reference imports (it downloads nothing)."""
    package = folder / "stub" / "torchvision" / "datasets"
    package.mkdir(parents=True)
    (folder / "stub" / "torchvision" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "utils.py").write_text(
        "def download_url(*args, **kwargs):\n"
        "    raise RuntimeError('a stub: the periodic benchmark downloads nothing')\n"
    )
    return folder / "stub"


def _reference_args(args: argparse.Namespace) -> list[str]:
    return [
        "--dataset",
        "periodic",
        "--latent-ode",
        "-n",
        str(args.n_series),
        "-l",
        "10",
        "-s",
        "50",
        "--niters",
        str(args.epochs),
        "-r",
        str(args.seed),
    ]


def _env(path: list[Path]) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in path)
    env["OMP_NUM_THREADS"] = "1"
    return env


def _epochs_median(per_iteration: list[float], per_epoch: int, lo: int, hi: int) -> float:
    """Median of the iterations of epochs ``lo+1 .. hi``."""
    return statistics.median(per_iteration[lo * per_epoch : hi * per_epoch])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-dir", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--n-series", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1991, help="the reference's default seed")
    parser.add_argument("--timeout", type=float, default=7200.0)
    args = parser.parse_args(argv)
    reference = args.reference_dir.resolve()
    if not (reference / "run_models.py").is_file() or not (reference / "lib").is_dir():
        parser.error(
            f"--reference-dir {reference} is not a checkout of YuliaRubanova/latent_ode "
            "(no run_models.py and lib/); clone it and pass its folder"
        )
    import latentode

    ours = Path(latentode.__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        stub = _stub(folder)
        data = folder / "series.npz"
        drawn = subprocess.run(
            [
                sys.executable,
                "-c",
                REFERENCE_CHILD,
                str(reference),
                str(data),
                "dump",
                *_reference_args(args),
            ],
            capture_output=True,
            text=True,
            cwd=folder,
            env=_env([stub, reference]),
            check=False,
        )
        if drawn.returncode != 0 or not data.is_file():
            print(f"the reference could not draw its data: {drawn.stderr.strip()[-800:]}")
            return 1
        with np.load(data) as arrays:
            shape = arrays["values"].shape
        print(f"reference's periodic series: {shape[0]} × {shape[1]} times, seed {args.seed}")
        timing = folder / "reference.json"
        ref_log = folder / "reference.log"
        ours_log = folder / "ours.log"
        with ref_log.open("w") as rl, ours_log.open("w") as ol:
            ref = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    REFERENCE_CHILD,
                    str(reference),
                    str(timing),
                    "train",
                    *_reference_args(args),
                ],
                stdout=rl,
                stderr=subprocess.STDOUT,
                cwd=folder,
                env=_env([stub, reference]),
            )
            mine = subprocess.Popen(
                [
                    sys.executable,
                    str(HERE / "periodic.py"),
                    "--data",
                    str(data),
                    "--tasks",
                    "interpolation",
                    "--epochs",
                    str(args.epochs),
                    "--test-every",
                    "1",
                    "--no-profile",
                    "--quiet",
                    "--seed",
                    str(args.seed),
                    # the reference's settings: its own time units, 80/20 with no validation
                    "--time-scale",
                    "1",
                    "--val-fraction",
                    "0",
                ],
                stdout=ol,
                stderr=subprocess.STDOUT,
                cwd=folder,
                env=_env([ours]),
            )
            codes = [p.wait(timeout=args.timeout) for p in (ref, mine)]
        if codes != [0, 0]:
            for name, log, code in (("reference", ref_log, codes[0]), ("ours", ours_log, codes[1])):
                if code:
                    print(f"{name} failed (exit {code}): {log.read_text()[-800:]}")
            return 1
        ref_run = json.loads(timing.read_text())
        ref_text = ref_log.read_text()
        our_run = json.loads(ours_log.read_text().strip().splitlines()[-1])["tasks"][
            "interpolation"
        ]
    # the reference: one optimiser step per iteration; a test pass follows each epoch's last
    marks = [ref_run["start"], *ref_run["steps"]]
    ref_seconds = [b - a for a, b in itertools.pairwise(marks)]
    ref_nfe = [float(n) for n in ref_run["nfe"]]
    ref_test = [float(x) for x in re.findall(r"Test MSE: ([0-9.]+)", ref_text)]
    epochs = args.epochs
    cut = min(10, epochs)
    per_epoch = -(-int(0.8 * args.n_series) // 50)  # the reference's batches per epoch
    our_seconds = our_run["epoch_s_per_iter"]
    our_nfe = our_run["epoch_nfe"]
    rows = []
    for name, lo, hi in ((f"1-{cut}", 0, cut), (f"{cut + 1}-{epochs}", cut, epochs)):
        if hi <= lo:
            continue
        r_s = _epochs_median(ref_seconds, per_epoch, lo, hi)
        r_n = _epochs_median(ref_nfe, per_epoch, lo, hi)
        o_s = statistics.median(our_seconds[lo:hi])
        o_n = statistics.median(our_nfe[lo:hi])
        rows.append((name, r_s, o_s, r_n, o_n))
    print(
        f"\n{'epochs':>8} {'ref s/iter':>11} {'ours s/iter':>12} {'speed-up':>9} "
        f"{'ref NFE':>8} {'ours NFE':>9}"
    )
    for name, r_s, o_s, r_n, o_n in rows:
        print(f"{name:>8} {r_s:>11.4f} {o_s:>12.4f} {r_s / o_s:>8.2f}x {r_n:>8.0f} {o_n:>9.0f}")
    print(f"\n{'epoch':>6} {'ref test MSE':>13} {'ours test MSE':>14}")
    for e in sorted({1, *range(5, epochs + 1, 5), epochs}):
        r = ref_test[e - 1] if e - 1 < len(ref_test) else float("nan")
        o = our_run["epoch_test_mse"][e - 1]
        print(f"{e:>6} {r:>13.4f} {o if o is not None else float('nan'):>14.4f}")
    # Time to accuracy: seconds in training iterations (test passes left out of both) until
    # ours first reaches the reference's final test MSE. The reference's first iteration of
    # each later epoch also holds the previous epoch's test pass: it counts as the epoch's
    # median iteration instead.
    ref_train = []
    for e in range(epochs):
        part = list(ref_seconds[e * per_epoch : (e + 1) * per_epoch])
        if e and part:
            part[0] = statistics.median(part)
        ref_train.append((ref_train[-1] if ref_train else 0.0) + sum(part))
    goal = ref_test[-1] if ref_test else float("nan")
    reached = [
        e for e, mse in enumerate(our_run["epoch_test_mse"]) if mse is not None and mse <= goal
    ]
    tested = [mse for mse in our_run["epoch_test_mse"] if mse is not None]
    ours_at = our_run["epoch_train_s"][reached[0]] if reached else None
    print(
        f"\ntime to the reference's final test MSE {goal:.4f}: reference "
        f"{ref_train[-1]:.1f} s ({epochs} epochs), ours "
        + (
            f"{ours_at:.1f} s (epoch {reached[0] + 1}): {ref_train[-1] / ours_at:.2f}x"
            if ours_at
            else f"not reached in {epochs} epochs (best {min(tested):.4f})"
        )
    )
    summary = {
        "epochs": epochs,
        "time_to_accuracy": {
            "goal_mse": goal,
            "ref_train_s": ref_train[-1] if ref_train else None,
            "ours_train_s": ours_at,
            "ours_epoch": reached[0] + 1 if reached else None,
        },
        "n_series": args.n_series,
        "seed": args.seed,
        "phases": [
            {
                "epochs": n,
                "ref_s_per_iter": r_s,
                "ours_s_per_iter": o_s,
                "ref_nfe": r_n,
                "ours_nfe": o_n,
            }
            for n, r_s, o_s, r_n, o_n in rows
        ],
        "ref_test_mse": ref_test,
        "ours_test_mse": our_run["epoch_test_mse"],
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

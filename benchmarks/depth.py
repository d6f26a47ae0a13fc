"""ResNet against ODE-Net on real digits: accuracy, parameters, time and memory (Chen et al. 2018).

Chen et al. 2018, *Neural Ordinary Differential Equations*, Sec. 3 and Table 1, replace the six
residual blocks of an MNIST ResNet by one ODE block and report that it matches the ResNet's
error with about a third of its parameters, at O(1) memory in depth with the adjoint. This
script repeats that comparison at small scale, offline, with the library's own blocks.

Protocol (printed at start; the knobs are command-line options)
---------------------------------------------------------------
Data. scikit-learn's bundled digits (``sklearn.datasets.load_digits``: 1797 real 8×8 images,
10 classes), pixels scaled from 0..16 to 0..1, split 75/25 into train/test, stratified by
class and seeded (1347 train, 450 test images).

Models. Every model is ``Linear(64 → width)`` stem → residual part → ``Linear(width → 10)``
head, trained on cross-entropy. The residual part is built from one definition of the residual
function, :class:`latentode.core.VectorField` (``dim = width``, its own hidden width ``width``,
``depth`` residual blocks, tanh, layer norm, autonomous):

- ``resnet``, L ∈ {1, 2, 4, 8}: :class:`latentode.core.ResNet` of L residual steps
  ``h ← h + f_l(h)`` with unshared weights (L different fields: the standard ResNet);
- ``adjoint``, S ∈ {1, 2, 4, 8}: ODE-Net, one field integrated by :class:`latentode.core.ODEBlock`
  over ``[0, 1]`` with S fixed steps (``SolverConfig(method, step_size=1/S, adjoint=True)``),
  gradients by the adjoint method;
- ``direct``, the same S: the same ODE-Net, backpropagated through the solver's operations.

The S grid matches the L grid (1×, 2×, 4×, 8× the steps). With ``--method euler`` the ODE-Net
takes exactly the ResNet's field evaluations (it is a weight-shared ResNet of step 1/S); with
the default ``rk4`` it takes four per step.

Training. Adam, constant learning rate, shuffled minibatches (seeded; the last, smaller batch is
kept), the same seed for every setting's initialisation. No validation set and no early
stopping: the test accuracy after the last epoch is reported, as the paper does.

Measurements. Every setting runs in its own fresh Python process (this script re-invoked with
``--one KIND:STEPS``), at ``torch.set_num_threads(1)`` (by default):

- time: seconds per epoch (batches, forward, backward, optimiser step), median over epochs;
- memory: torch's CPU allocations bypass ``tracemalloc``, so the process's resident set is
  read from ``/proc/self/status``. After setup (split loaded, model and optimiser built, one
  no-grad forward pass of a batch so that one-off library buffers land in the baseline) the
  peak (``VmHWM``) is reset to the current RSS, the baseline; after the last training step,
  before evaluation, the peak is read again. The difference, the peak training memory, holds
  the graph's saved activations, the gradients and Adam's two moments (3× the parameters'
  bytes). ``ru_maxrss`` is not used: Linux carries it over from the parent process, which
  would hide every child's peak under the parent's (see :func:`_start_peak`);
- parameters: the trainable parameter count.

Targets (a verdict is printed for each):

1. an adjoint ODE-Net within 1 accuracy point of the best ResNet (highest test accuracy, ties to
   the fewer parameters) with at most half its parameters;
2. adjoint peak training memory flat (largest ≤ 1.10 × smallest over S) while the steps grow 8×,
   where the ResNet's and direct backpropagation's grow (L = 8 / L = 1 and S = 8 / S = 1 above
   1.10).

Run: ``python benchmarks/depth.py`` (about 3½ minutes on one core), or ``--quick`` (a smoke
run: width 32, two epochs, steps {1, 2}; about 20 s, nearly all of it the six processes'
imports).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

from latentode.core import ODEBlock, ResNet, SolverConfig, VectorField

ACCURACY_TOLERANCE = 1.0  # accuracy points
PARAMETER_RATIO = 0.5
FLAT_MEMORY_RATIO = 1.10


@dataclass(frozen=True)
class Settings:
    """Every knob of one benchmark run (printed at start)."""

    steps: tuple[int, ...] = (1, 2, 4, 8)
    width: int = 256
    field_depth: int = 0
    method: str = "rk4"
    epochs: int = 60
    batch_size: int = 512
    lr: float = 3e-3
    test_fraction: float = 0.25
    seed: int = 0
    threads: int = 1


@dataclass(frozen=True)
class SettingResult:
    """One setting's numbers, as the child process reports them (one JSON line)."""

    kind: str
    steps: int
    n_params: int
    test_accuracy: float
    seconds_per_epoch: float
    baseline_kib: int
    peak_kib: int
    final_loss: float
    field_evals: int

    @property
    def memory_mib(self) -> float:
        """Peak resident-set growth during training, MiB."""
        return (self.peak_kib - self.baseline_kib) / 1024


def _field(settings: Settings) -> dict[str, object]:
    """The one VectorField definition every model's residual function uses."""
    return {"width": settings.width, "depth": settings.field_depth}


def _resnet(settings: Settings, steps: int) -> nn.Module:
    return ResNet(settings.width, steps, shared_weights=False, **_field(settings))


def _ode_net(adjoint: bool) -> Callable[[Settings, int], nn.Module]:
    def build(settings: Settings, steps: int) -> nn.Module:
        config = SolverConfig(method=settings.method, step_size=1.0 / steps, adjoint=adjoint)
        field = VectorField(settings.width, **_field(settings))
        return ODEBlock(field, t0=0.0, t1=1.0, config=config)

    return build


# kind -> builder of the residual part (width -> width) for a number of steps
BODIES: dict[str, Callable[[Settings, int], nn.Module]] = {
    "resnet": _resnet,
    "adjoint": _ode_net(adjoint=True),
    "direct": _ode_net(adjoint=False),
}


def build_model(settings: Settings, kind: str, steps: int) -> nn.Module:
    """Stem ``(batch, 64) -> (batch, width)``, residual part, head ``-> (batch, 10)`` logits."""
    return nn.Sequential(
        nn.Linear(64, settings.width),
        BODIES[kind](settings, steps),
        nn.Linear(settings.width, 10),
    )


def load_data(settings: Settings) -> dict[str, np.ndarray]:
    """The seeded stratified split: ``x_* (n, 64)`` pixels in [0, 1], ``y_* (n,)`` int64 labels."""
    # Imported here: the per-setting processes get the arrays from the parent and skip
    # scikit-learn's import (and its memory) altogether.
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)  # (1797, 64)
    x_train, x_test, y_train, y_test = train_test_split(
        x,
        digits.target.astype(np.int64),
        test_size=settings.test_fraction,
        stratify=digits.target,
        random_state=settings.seed,
    )
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def _status_kib(field: str) -> int:
    """A ``/proc/self/status`` memory line (``VmRSS``, ``VmHWM``), in KiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field} line; the memory probe needs Linux")


def _start_peak() -> int:
    """Reset this process's peak RSS to its current RSS and return that, the baseline, in KiB.

    ``getrusage(RUSAGE_SELF).ru_maxrss`` cannot be used: Linux carries it across fork and exec,
    so a child starts with its parent's peak (measured here: a 50 MB allocation in a child of a
    320 MB parent left ru_maxrss at 320 MB). ``VmHWM`` belongs to the process image alone, and
    writing 5 to ``clear_refs`` (Linux ≥ 4.0) resets it; where that is refused, the baseline is
    the high-water mark so far (setup's own transient peak then hides part of training's).
    """
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return _status_kib("VmHWM")
    return _status_kib("VmRSS")


def run_one(
    settings: Settings, kind: str, steps: int, data: dict[str, np.ndarray]
) -> SettingResult:
    """Train and score one setting in this process; memory is this process's peak RSS growth."""
    torch.set_num_threads(settings.threads)
    x_train, y_train, x_test, y_test = (
        torch.from_numpy(data[name]) for name in ("x_train", "y_train", "x_test", "y_test")
    )
    torch.manual_seed(settings.seed)
    model = build_model(settings, kind, steps)
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.lr)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(settings.seed)
    with torch.no_grad():
        model(x_train[: settings.batch_size])  # one-off library buffers land in the baseline
    baseline = _start_peak()

    seconds, loss = [], float("nan")
    for _ in range(settings.epochs):
        start = time.perf_counter()
        order = torch.randperm(len(x_train), generator=generator)
        for batch in order.split(settings.batch_size):
            optimiser.zero_grad()
            loss_tensor = loss_fn(model(x_train[batch]), y_train[batch])
            loss_tensor.backward()
            optimiser.step()
        seconds.append(time.perf_counter() - start)
        loss = float(loss_tensor.detach())
    peak = _status_kib("VmHWM")

    model.eval()
    with torch.no_grad():
        accuracy = float((model(x_test).argmax(dim=-1) == y_test).float().mean())
    # The ODE block counts its evaluations; a ResNet takes one per step.
    stats = getattr(model[1], "last_stats", None)
    return SettingResult(
        kind=kind,
        steps=steps,
        n_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
        test_accuracy=100.0 * accuracy,
        seconds_per_epoch=statistics.median(seconds),
        baseline_kib=baseline,
        peak_kib=peak,
        final_loss=loss,
        field_evals=steps if stats is None else stats.nfe_forward,
    )


def _settings_argv(settings: Settings) -> list[str]:
    """The command-line flags that reproduce ``settings`` in a child process."""
    argv = ["--steps", *map(str, settings.steps)]
    for f in fields(Settings):
        if f.name != "steps":
            argv += [f"--{f.name.replace('_', '-')}", str(getattr(settings, f.name))]
    return argv


def run_isolated(settings: Settings, kind: str, steps: int, data_path: Path) -> SettingResult:
    """:func:`run_one` in a fresh interpreter, so its peak RSS is its own."""
    command = [
        sys.executable,
        __file__,
        "--one",
        f"{kind}:{steps}",
        "--data",
        str(data_path),
        *_settings_argv(settings),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"setting {kind}:{steps} failed:\n{done.stderr}")
    return SettingResult(**json.loads(done.stdout.strip().splitlines()[-1]))


def _ratio(results: dict[tuple[str, int], SettingResult], kind: str, steps: Sequence[int]):
    first, last = results[kind, steps[0]].memory_mib, results[kind, steps[-1]].memory_mib
    return last / first if first > 0 else float("inf")


def print_table(results: dict[tuple[str, int], SettingResult]) -> None:
    print(
        "\n| model | L or S | field evals (fwd) | params | test acc % | s / epoch "
        "| RSS baseline MiB | RSS peak MiB | peak train mem MiB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results.values():
        print(
            f"| {r.kind} | {r.steps} | {r.field_evals} | {r.n_params:,} | {r.test_accuracy:.2f} "
            f"| {r.seconds_per_epoch:.3f} | {r.baseline_kib / 1024:.1f} | {r.peak_kib / 1024:.1f} "
            f"| {r.memory_mib:.1f} |"
        )


def print_verdicts(results: dict[tuple[str, int], SettingResult], steps: Sequence[int]) -> None:
    resnets = [r for r in results.values() if r.kind == "resnet"]
    best = max(resnets, key=lambda r: (r.test_accuracy, -r.n_params))
    passing = [
        r.steps
        for r in results.values()
        if r.kind == "adjoint"
        and r.test_accuracy >= best.test_accuracy - ACCURACY_TOLERANCE
        and r.n_params <= PARAMETER_RATIO * best.n_params
    ]
    ode = max((r for r in results.values() if r.kind == "adjoint"), key=lambda r: r.test_accuracy)
    print(
        f"\ntarget 1 (adjoint ODE-Net within {ACCURACY_TOLERANCE:g} point of the best ResNet "
        f"with ≤ {PARAMETER_RATIO:g}× its parameters): best ResNet L={best.steps} "
        f"{best.test_accuracy:.2f}% with {best.n_params:,} parameters; best ODE-Net S={ode.steps} "
        f"{ode.test_accuracy:.2f}% with {ode.n_params:,} "
        f"({ode.n_params / best.n_params:.2f}×): "
        + (f"met at S={passing}" if passing else "missed")
    )
    adjoint = [results["adjoint", s].memory_mib for s in steps]
    spread = max(adjoint) / min(adjoint) if min(adjoint) > 0 else float("inf")
    growth = {kind: _ratio(results, kind, steps) for kind in ("resnet", "direct")}
    flat = spread <= FLAT_MEMORY_RATIO
    grows = all(g > FLAT_MEMORY_RATIO for g in growth.values())
    print(
        f"target 2 (adjoint memory flat within {FLAT_MEMORY_RATIO:g}× over {steps[-1]}× the "
        f"steps, ResNet and direct growing): adjoint largest/smallest {spread:.2f}× "
        f"({min(adjoint):.1f}–{max(adjoint):.1f} MiB); ResNet L={steps[-1]}/L={steps[0]} "
        f"{growth['resnet']:.2f}×; direct S={steps[-1]}/S={steps[0]} {growth['direct']:.2f}×: "
        + ("met" if flat and grows else "missed")
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    d = Settings()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, nargs="+", default=list(d.steps), help="L and S grid")
    p.add_argument("--width", type=int, default=d.width)
    p.add_argument("--field-depth", type=int, default=d.field_depth)
    p.add_argument("--method", choices=["rk4", "euler"], default=d.method)
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--test-fraction", type=float, default=d.test_fraction)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--threads", type=int, default=d.threads)
    p.add_argument("--quick", action="store_true", help="smoke run: width 32, 2 epochs, {1, 2}")
    p.add_argument("--one", metavar="KIND:STEPS", help="run one setting here, print JSON")
    p.add_argument("--data", type=Path, help="with --one: the split, as saved by the parent")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.quick:
        args.width, args.epochs, args.steps = 32, 2, [1, 2]
    settings = Settings(
        steps=tuple(args.steps),
        width=args.width,
        field_depth=args.field_depth,
        method=args.method,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        test_fraction=args.test_fraction,
        seed=args.seed,
        threads=args.threads,
    )
    if args.one is not None:
        kind, steps = args.one.split(":")
        if kind not in BODIES:
            raise ValueError(f"`--one` kind must be one of {sorted(BODIES)}; got {kind!r}")
        data = dict(np.load(args.data)) if args.data is not None else load_data(settings)
        print(json.dumps(asdict(run_one(settings, kind, int(steps), data))))
        return

    print("depth benchmark: ResNet vs ODE-Net on sklearn digits (Chen et al. 2018, Sec. 3)")
    print(
        f"  digits 8×8, 75/25 stratified split (seed {settings.seed}), stem Linear(64→"
        f"{settings.width}), head Linear({settings.width}→10); VectorField(dim {settings.width}, "
        f"width {settings.width}, depth {settings.field_depth}, tanh, layer norm)"
    )
    print(
        f"  L = S ∈ {list(settings.steps)}; ODE-Net {settings.method} on [0, 1], step 1/S; "
        f"Adam lr {settings.lr:g}, batch {settings.batch_size}, epochs {settings.epochs}, "
        f"threads {settings.threads}, torch {torch.__version__}; one process per setting"
    )
    results: dict[tuple[str, int], SettingResult] = {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        data_path = Path(tmp) / "digits.npz"
        np.savez(data_path, **load_data(settings))
        for kind in BODIES:
            for steps in settings.steps:
                results[kind, steps] = r = run_isolated(settings, kind, steps, data_path)
                print(
                    f"  {kind:<8} {steps:>2}: acc {r.test_accuracy:6.2f}%  "
                    f"loss {r.final_loss:.4f}  {r.seconds_per_epoch:.3f} s/epoch  "
                    f"+{r.memory_mib:.1f} MiB  ({time.perf_counter() - start:.0f} s)",
                    flush=True,
                )
    print_table(results)
    print_verdicts(results, settings.steps)


if __name__ == "__main__":
    main()

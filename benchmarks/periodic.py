"""Periodic toy benchmark at the reference settings of Rubanova et al. (2019): speed and accuracy.

Protocol (the paper's ``run_models.py --dataset periodic --latent-ode -n 1000 -s 50 -l 10``):

- 1000 sinusoids ``sin(2π f t + φ)`` (``f ~ U(0.4, 0.8)``, ``φ ~ U(0, 2π)``, noise std 0.01)
  on one irregular grid of 100 times in ``[0, 5]`` (``latentode.data.make_periodic``); series
  split 80/10/10 into train/validation/test, seeded.
- Interpolation: a random 50% of each series' points condition the encoder, all 100 points are
  targets. Extrapolation (a second model): every point in the first half of each series' span
  conditions, points in the second half are targets.
- Model: latent 10, ODE-RNN encoder (state 20, a width-32 field, one Euler step between
  observations, as the reference takes between its grid points), decoder field of width 100
  (one residual block), Gaussian head with std 0.01, K = 3 posterior samples per series (as
  the reference trains), ELBO. Decoder solver dopri5 at
  rtol 1e-3 / atol 1e-4, differentiated directly. Adamax, lr 1e-2 decayed ×0.999 per
  iteration down to 1e-3; KL weight 0 for 10 epochs, then ``1 − 0.99^(epoch − 10)``. Batch 50.
- Times stay in the data's units (``--time-scale 1``: the model's clock runs over ``[0, 5]``),
  as the reference's code keeps them. The data module's own default maps the longest span to
  one model time unit; on this data that needs a field 5× faster (2–4 cycles per unit), and at
  30 epochs it had learned only each series' mean (test MSE 0.43 against 0.06; the closing
  note of issue 16 has the table).
- Test MSE: posterior-mean ``z0`` decoded at the target times, squared error against the
  observed (noisy) targets, averaged over target points, as the reference reports it; printed
  during training too (the reference's log reports test, not validation, MSE).

Speed is wall time per training iteration (loading the batch, forward, backward, optimiser
step) at ``torch.set_num_threads(1)``; the median over all iterations is printed, with the NFE
per iteration, and a profile of one iteration split by encoder position and solver step.

The decoder solves every posterior sample of every series as its own row
(:func:`latentode.core.solve_rows`). Two NFE are printed: the batched field calls per iteration
(``nfe_forward``; each call evaluates the rows still integrating, so the number is comparable to
a whole-batch solve's) and the mean evaluations per row (``row_nfe_forward / n_rows``: the work).

The last line printed is one JSON object: per task the median seconds per iteration, the
median decoder NFE per iteration, the test MSE, and the settings. ``benchmarks/reference.py``
runs the reference implementation beside this on the same data and prints the ratios.

Run: ``python benchmarks/periodic.py`` (about 5 minutes on one core), or ``--quick``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from latentode.core import SolverConfig
from latentode.data import IrregularBatch
from latentode.lightning import IrregularTimeSeriesDataModule
from latentode.losses import masked_mse
from latentode.model import LatentODEModel


@dataclass
class RunResult:
    task: str
    seconds_per_iteration: list[float]
    nfe_forward: list[int]
    row_nfe: list[float]
    nfe_encoder: int
    epochs: int
    test_mse: float
    train_seconds: float
    epoch_seconds: list[float]  # median seconds per iteration in each epoch
    epoch_nfe: list[float]  # median decoder NFE per iteration in each epoch
    epoch_test_mse: list[float | None]  # test MSE after each epoch, where measured
    epoch_train_s: list[float]  # seconds spent in training iterations up to each epoch's end


def _kl_weight(epoch: int, wait: int = 10) -> float:
    """The reference's schedule: 0 for ``wait`` epochs, then ``1 − 0.99^(epoch − wait)``."""
    return 0.0 if epoch < wait else 1.0 - 0.99 ** (epoch - wait)


def build(
    args: argparse.Namespace, task: str
) -> tuple[IrregularTimeSeriesDataModule, LatentODEModel]:
    if args.data is not None:  # series generated elsewhere (benchmarks/reference.py)
        source: object = _frame_from_npz(args.data)
        kwargs: dict = {"test_fraction": 0.2}
    else:
        source = "periodic"
        kwargs = {
            "dataset_kwargs": {
                "n_series": args.n_series,
                "n_points": args.n_points,
                "t_max": 5.0,
                "observed_fraction": 1.0,
                "noise_std": 0.01,
            },
            "test_fraction": 0.1,
        }
    dm = IrregularTimeSeriesDataModule(
        source,
        **kwargs,
        task=task,
        # interpolation conditions on a random half of the points; extrapolation on all of
        # the first half (the reference's protocol)
        cond_fraction=0.5 if task == "interpolation" else 1.0,
        extrap_cut=0.5,
        val_fraction=args.val_fraction,
        batch_size=args.batch_size,
        time_gaps_per_unit=args.time_gaps_per_unit,
        time_scale=None if args.time_gaps_per_unit is not None else args.time_scale,
        standardize=args.standardize,
        seed=args.seed,
    )
    dm.setup()
    torch.manual_seed(args.seed)
    encoder_kwargs = (
        {"n_substeps": args.n_substeps, "field_width": args.encoder_width}
        if args.encoder == "odernn"
        else {"flow": args.flow, "field_width": args.encoder_width}
    )
    model = LatentODEModel(
        dm.n_features,
        latent_dim=args.latent_dim,
        encoder=args.encoder,
        encoder_hidden=args.encoder_hidden,
        encoder_kwargs=encoder_kwargs,
        decoder_width=100,
        decoder_depth=1,
        decoder=args.decoder,
        flow=args.flow,
        obs_std=0.01,
        level=args.level,
        train_solver=SolverConfig(method="dopri5", rtol=1e-3, atol=1e-4),
    )
    return dm, model


def _frame_from_npz(path: str) -> pd.DataFrame:
    """``times (T,)`` and ``values (N, T)`` (or ``(N, T, 1)``) → a long frame of N series."""
    with np.load(path) as arrays:
        times, values = arrays["times"], arrays["values"].reshape(len(arrays["values"]), -1)
    n, t = values.shape
    return pd.DataFrame(
        {"id": np.repeat(np.arange(n), t), "time": np.tile(times, n), "x": values.ravel()}
    )


def _decoder_nfe(model: LatentODEModel) -> int:
    return sum(s.nfe_forward for s in model.decoder.last_stats)


def _decoder_row_nfe(model: LatentODEModel) -> float:
    """Field evaluations per row (sample × series) in the latest decoder solve."""
    stats = model.decoder.last_stats
    return sum(s.row_nfe_forward for s in stats) / max(sum(s.n_rows for s in stats), 1)


@torch.no_grad()
def evaluate(model: LatentODEModel, loader) -> float:
    """Masked MSE of the posterior-mean prediction, averaged over all target points."""
    model.eval()
    total, count = 0.0, 0.0
    for cond, target in loader:
        mean = model.predict_mean(cond, target.times)  # (batch, n_times, f)
        n = float(target.mask.sum())
        total += float(masked_mse(mean, target.values, target.mask)) * n
        count += n
    model.train()
    return total / count


def train(args: argparse.Namespace, task: str) -> tuple[RunResult, LatentODEModel, IrregularBatch]:
    dm, model = build(args, task)
    optimiser = torch.optim.Adamax(model.parameters(), lr=1e-2)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda it: max(0.999**it, 0.1))
    generator = torch.Generator().manual_seed(args.seed)
    seconds, nfe, row_nfe = [], [], []
    epoch_seconds, epoch_nfe, epoch_test, epoch_train = [], [], [], []
    start = time.perf_counter()
    for epoch in range(args.epochs):
        beta = _kl_weight(epoch)
        losses = []
        loader = iter(dm.train_dataloader())
        while True:
            t0 = time.perf_counter()
            try:
                cond, target = next(loader)
            except StopIteration:
                break
            optimiser.zero_grad()
            terms, _ = model.loss(
                cond, target, n_samples=args.n_samples, kl_weight=beta, generator=generator
            )
            terms.loss.backward()
            optimiser.step()
            schedule.step()
            seconds.append(time.perf_counter() - t0)
            nfe.append(_decoder_nfe(model))
            row_nfe.append(_decoder_row_nfe(model))
            losses.append(float(terms.loss.detach()))
        per_epoch = len(seconds) // (epoch + 1)
        epoch_seconds.append(statistics.median(seconds[-per_epoch:]))
        epoch_nfe.append(statistics.median(nfe[-per_epoch:]))
        epoch_train.append(sum(seconds))
        tested = args.test_every and (epoch + 1) % args.test_every == 0
        epoch_test.append(evaluate(model, dm.test_dataloader()) if tested else None)
        if args.verbose and (epoch % max(args.epochs // 10, 1) == 0 or epoch == args.epochs - 1):
            val = evaluate(model, dm.val_dataloader())
            test = evaluate(model, dm.test_dataloader())
            print(
                f"  [{task}] epoch {epoch + 1:4d}/{args.epochs}"
                f"  loss {statistics.mean(losses):8.4f}"
                f"  val mse {val:.5f}  test mse {test:.5f}  kl weight {beta:.2f}"
                f"  nfe/iter {nfe[-1]:3d}"
                f" (per row {row_nfe[-1]:5.1f})"
                f"  {time.perf_counter() - start:6.1f} s",
                flush=True,
            )
    train_seconds = time.perf_counter() - start
    result = RunResult(
        task=task,
        seconds_per_iteration=seconds,
        nfe_forward=nfe,
        row_nfe=row_nfe,
        nfe_encoder=getattr(model.encoder, "nfe", 0),
        epochs=args.epochs,
        test_mse=evaluate(model, dm.test_dataloader()),
        train_seconds=train_seconds,
        epoch_seconds=epoch_seconds,
        epoch_nfe=epoch_nfe,
        epoch_test_mse=epoch_test,
        epoch_train_s=epoch_train,
    )
    return result, model, next(iter(dm.train_dataloader()))


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def profile(model: LatentODEModel, batch, n_samples: int, repeats: int) -> None:
    """Where one training iteration's time goes, with the trained model on one batch."""
    cond, target = batch
    optimiser = torch.optim.Adamax(model.parameters(), lr=0.0)  # lr 0: time steps, keep weights

    def encoder_forward():
        return model.encoder(cond)

    def encoder_both():
        q = model.encoder(cond)
        (q.loc.sum() + q.scale.sum()).backward()

    with torch.no_grad():
        q = model.encoder(cond)
    z0 = q.loc.expand(n_samples, *q.loc.shape).clone()  # (K, batch, latent)

    def decoder_forward():
        return model.decoder(z0, target.times)

    def decoder_both():
        model.decoder(z0.requires_grad_(True), target.times).sum().backward()

    def whole():
        optimiser.zero_grad()
        model.loss(cond, target, n_samples=n_samples)[0].loss.backward()
        optimiser.step()

    enc_f = _median_ms(encoder_forward, repeats)
    enc_b = _median_ms(encoder_both, repeats) - enc_f
    dec_f = _median_ms(decoder_forward, repeats)
    steps = sum(s.steps_forward for s in model.decoder.last_stats)
    nfe = _decoder_nfe(model)
    dec_b = _median_ms(decoder_both, repeats) - dec_f
    total = _median_ms(whole, repeats)
    # The floor under the decoder: its vector field alone, evaluated NFE times, with backward.
    field, t0 = model.decoder.field, torch.zeros(())
    state = z0.detach().clone().requires_grad_(True)  # (K, batch, latent)
    one_f = _median_ms(lambda: field(t0, state), repeats * 5)
    one_b = _median_ms(lambda: field(t0, state).sum().backward(), repeats * 5) - one_f
    positions = cond.max_obs + 1  # every position, plus the move to time 0
    print(f"\nprofile of one iteration (trained model, batch {cond.batch_size}, K={n_samples}):")
    print(f"  whole iteration               {total:7.2f} ms")
    print(
        f"  encoder forward               {enc_f:7.2f} ms  = {positions} positions × "
        f"{1e3 * enc_f / positions:5.0f} µs  ({model.encoder.nfe} field evaluations)"
    )
    print(f"  encoder backward              {enc_b:7.2f} ms")
    print(
        f"  decoder forward               {dec_f:7.2f} ms  = {steps} dopri5 steps × "
        f"{1e3 * dec_f / max(steps, 1):5.0f} µs  ({nfe} field evaluations, "
        f"{_decoder_row_nfe(model):.1f} per row, {target.max_obs} output times per series)"
    )
    print(f"  decoder backward              {dec_b:7.2f} ms")
    print(
        f"    of which the vector field alone: {nfe} × ({1e3 * one_f:.0f} µs forward + "
        f"{1e3 * one_b:.0f} µs backward) = {nfe * (one_f + one_b):.2f} ms"
    )
    rest = total - enc_f - enc_b - dec_f - dec_b
    print(f"  rest (likelihood, KL, optimiser, sampling)  {rest:7.2f} ms")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--tasks", nargs="+", default=["interpolation", "extrapolation"])
    parser.add_argument("--n-series", type=int, default=1000)
    parser.add_argument("--n-points", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--latent-dim", type=int, default=10)
    parser.add_argument("--n-samples", type=int, default=3, help="posterior samples K")
    parser.add_argument("--n-substeps", type=int, default=1, help="ODE-RNN Euler sub-steps")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 epochs, 100 series")
    parser.add_argument(
        "--data", default=None, help="an .npz of times (T,) and values (N, T): train on these"
    )
    parser.add_argument(
        "--test-every", type=int, default=0, help="test MSE after every N-th epoch (0: at the end)"
    )
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    parser.add_argument("--decoder", choices=["ode", "flow"], default="ode")
    parser.add_argument("--encoder", choices=["odernn", "flowrnn"], default="odernn")
    parser.add_argument("--flow", choices=["resnet", "gru", "coupling"], default="coupling")
    parser.add_argument("--quiet", dest="verbose", action="store_false")
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument(
        "--time-gaps-per-unit",
        type=float,
        default=None,
        help="learn the time scale: one model time unit per this many median gaps",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="data time units per model time unit (default 1: the data's own, as the reference)",
    )
    parser.add_argument("--level", choices=["none", "series"], default="none")
    parser.add_argument("--encoder-width", type=int, default=32, help="the encoder field's")
    parser.add_argument("--encoder-hidden", type=int, default=20, help="the encoder state's")
    parser.add_argument("--standardize", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.n_series = 2, 100
    torch.set_num_threads(args.threads)

    print("periodic benchmark (Rubanova et al. 2019 reference settings)")
    print(
        f"  series {args.n_series}, points {args.n_points} on [0, 5], 50% conditioning, "
        f"latent {args.latent_dim}, batch {args.batch_size}, K {args.n_samples}, "
        f"ODE-RNN ({args.n_substeps} Euler sub-steps), dopri5 rtol 1e-3 atol 1e-4, "
        f"epochs {args.epochs}, threads {torch.get_num_threads()}, torch {torch.__version__}"
    )
    results = []
    for task in args.tasks:
        result, model, batch = train(args, task)
        results.append(result)
        if task == args.tasks[0] and args.profile and args.decoder == "ode":
            profile(model, batch, args.n_samples, repeats=5 if args.quick else 20)
    print("\nresults")
    print(
        f"  {'task':<14} {'epochs':>6} {'iters':>6} {'median s/iter':>13} {'first epoch':>11} "
        f"{'last epoch':>10} {'NFE/iter (dec fwd)':>18} {'per row':>7} {'enc NFE':>7} "
        f"{'test MSE':>9} "
        f"{'train s':>8}"
    )
    for r in results:
        per_epoch = len(r.seconds_per_iteration) // r.epochs
        first = statistics.median(r.seconds_per_iteration[:per_epoch])
        last = statistics.median(r.seconds_per_iteration[-per_epoch:])
        print(
            f"  {r.task:<14} {r.epochs:>6} {len(r.seconds_per_iteration):>6} "
            f"{statistics.median(r.seconds_per_iteration):>13.4f} {first:>11.4f} {last:>10.4f} "
            f"{statistics.median(r.nfe_forward):>18.0f} {statistics.median(r.row_nfe):>7.1f} "
            f"{r.nfe_encoder:>7d} {r.test_mse:>9.5f} "
            f"{r.train_seconds:>8.1f}"
        )
    summary = {
        "benchmark": "periodic",
        "settings": {
            k: getattr(args, k)
            for k in (
                "epochs",
                "n_series",
                "n_points",
                "batch_size",
                "latent_dim",
                "n_samples",
                "n_substeps",
                "threads",
                "seed",
                "data",
                "decoder",
                "encoder",
                "flow",
                "time_scale",
                "time_gaps_per_unit",
                "level",
                "val_fraction",
                "encoder_width",
                "encoder_hidden",
            )
        }
        | {"solver": "dopri5 rtol 1e-3 atol 1e-4", "torch": torch.__version__},
        "tasks": {
            r.task: {
                "s_per_iter": statistics.median(r.seconds_per_iteration),
                "nfe": statistics.median(r.nfe_forward),
                "test_mse": r.test_mse,
                "train_seconds": r.train_seconds,
                "epoch_s_per_iter": r.epoch_seconds,
                "epoch_nfe": r.epoch_nfe,
                "epoch_test_mse": r.epoch_test_mse,
                "epoch_train_s": r.epoch_train_s,
            }
            for r in results
        },
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

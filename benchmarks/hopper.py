"""MuJoCo Hopper as the reference code of Rubanova et al. (2019) runs it: interpolation and
extrapolation test MSE.

Data: ``latentode.data.real.load_hopper`` (dm_control's ``hopper`` on mujoco 3.17, seed 123,
trajectories of 200 steps × 14 dims, time = step / 200), each dimension scaled over the whole
set of 200-step trajectories as the reference's ``normalize_data`` does, ``(x − min) / max``
(the published MSEs are on data scaled so). Trajectories are split 80/20 into train / test,
seeded, with no validation set (the reference has none). For scale, the table also prints the
MSE of predicting every point by the training set's per-dimension mean.

- **Interpolation** at a fraction p of points observed (the reference's ``parse_datasets``):
  one random 100-step window per trajectory (seeded; each window's times count from its
  start); a random p of its 100 points condition the ODE-RNN encoder; all 100 are targets.
- **Extrapolation** (its ``split_data_extrap`` with ``dataset="hopper"``): the whole 200-step
  trajectory; a random p of its first third (66 points) condition; the remaining 134 points
  are predicted.

The paper's text describes sequences of 100 time points and extrapolation from the first half
to the second; this follows the code, whose extrapolation differs (200 steps, a third observed).

Model (the paper's sizes by default): latent 15, ODE-RNN encoder with state 30, decoder field
of width 300 (one residual block), Gaussian std 0.01, dopri5 at rtol 1e-3 / atol 1e-4, Adamax
lr 1e-2, batch 50, KL weight annealed over the first 10 epochs. Test MSE: the posterior-mean
``z0`` decoded at the target times against the targets, over all target entries.

Training stops at ``--epochs`` or after ``--minutes`` per setting, whichever comes first; the
table prints the epochs reached, the wall time and the published numbers beside ours.

Run: ``python benchmarks/hopper.py`` (the full protocol: hours on a CPU), or e.g.
``python benchmarks/hopper.py --n-trajectories 2000 --fractions 0.1 0.5 --minutes 4``.
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch

from latentode.data.real import HOPPER_DIMS, load_hopper
from latentode.lightning import IrregularTimeSeriesDataModule, KLAnnealing, LatentODEModule
from latentode.losses import masked_mse

# Rubanova et al. 2019, Table 3: Latent ODE (ODE-RNN encoder), test MSE × 10⁻².
PUBLISHED = {
    "interpolation": {0.1: 0.360, 0.2: 0.295, 0.3: 0.300, 0.5: 0.285},
    "extrapolation": {0.1: 1.441, 0.2: 1.400, 0.3: 1.175, 0.5: 1.258},
}


N_STEPS = 200
WINDOW = 100  # the reference's --timepoints for interpolation
N_OBSERVED_EXTRAP = N_STEPS // 3  # split_data_extrap: the first third conditions


def scaled_frame(n_trajectories: int) -> pd.DataFrame:
    """Whole 200-step trajectories, scaled ``(x − min) / max`` per dimension over the set."""
    frame = load_hopper(n_trajectories, N_STEPS, seed=123)
    values = frame[list(HOPPER_DIMS)]
    low, high = values.min(), values.max()
    frame[list(HOPPER_DIMS)] = (values - low) / high.replace(0, 1.0)
    return frame


def windows(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """One random run of ``WINDOW`` consecutive steps per trajectory (seeded)."""
    rng = np.random.default_rng(seed)
    ids = frame["id"].unique()
    start = rng.integers(0, N_STEPS - WINDOW + 1, size=len(ids))
    step = frame.groupby("id").cumcount().to_numpy()  # 0..199 within each trajectory
    first = pd.Series(start, index=ids).reindex(frame["id"]).to_numpy()
    keep = (step >= first) & (step < first + WINDOW)
    return frame[keep].reset_index(drop=True)


def run(frame, task: str, fraction: float, args: argparse.Namespace) -> dict:
    dm = IrregularTimeSeriesDataModule(
        frame,
        task=task,
        cond_fraction=fraction,
        # the first 66 of 200 steps (times 0 .. 65/200) fall before the cut
        extrap_cut=(N_OBSERVED_EXTRAP - 0.5) / (N_STEPS - 1),
        val_fraction=0.0,
        test_fraction=0.2,
        batch_size=50,
        seed=args.seed,
    )
    dm.setup()
    steps_per_epoch = int(np.ceil(len(dm.split["train"]) / 50))
    torch.manual_seed(args.seed)
    module = LatentODEModule(
        14,
        latent_dim=15,
        encoder="odernn",
        encoder_hidden=30,
        decoder_width=args.width,
        decoder_depth=1,
        obs_std=0.01,
        optimizer="adamax",
        lr=1e-2,
    )
    trainer = pl.Trainer(
        max_epochs=args.epochs,
        max_time={"minutes": args.minutes},
        accelerator="cpu",
        callbacks=[KLAnnealing(n_steps=10 * steps_per_epoch)],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        gradient_clip_val=1.0,
        num_sanity_val_steps=0,
    )
    start = time.perf_counter()
    trainer.fit(module, dm)
    seconds = time.perf_counter() - start
    model = module.model.eval()
    train_ids = [dm.dataset.ids[i] for i in dm.split["train"]]
    train_values = frame[frame["id"].isin(train_ids)][list(HOPPER_DIMS)]
    constant = torch.tensor(train_values.mean().to_numpy(), dtype=torch.float32)
    total, baseline, count = 0.0, 0.0, 0.0
    with torch.no_grad():
        for cond, target in dm.test_dataloader():
            mean = model.predict_mean(cond, target.times)
            n = float(target.mask.sum())
            total += float(masked_mse(mean, target.values, target.mask)) * n
            flat = constant.expand_as(target.values)
            baseline += float(masked_mse(flat, target.values, target.mask)) * n
            count += n
    return {
        "task": task,
        "fraction": fraction,
        "epochs": trainer.current_epoch,
        "seconds": seconds,
        "mse": total / count,
        "mean_mse": baseline / count,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-trajectories", type=int, default=10_000)
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.2, 0.3, 0.5])
    parser.add_argument(
        "--tasks", nargs="+", default=["interpolation", "extrapolation"], choices=list(PUBLISHED)
    )
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--minutes", type=float, default=60.0, help="time budget per setting")
    parser.add_argument("--width", type=int, default=300, help="decoder field width")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"pytorch_lightning.*")
    print(f"settings: {vars(args)}")

    start = time.perf_counter()
    whole = scaled_frame(args.n_trajectories)
    frames = {"interpolation": windows(whole, args.seed), "extrapolation": whole}
    print(
        f"data: {whole['id'].nunique()} trajectories of {N_STEPS} steps "
        f"({time.perf_counter() - start:.1f} s)"
    )
    rows = []
    for task in args.tasks:
        for fraction in args.fractions:
            row = run(frames[task], task, fraction, args)
            rows.append(row)
            print(
                f"  {task} p={fraction:g}: {row['epochs']} epochs, {row['seconds']:.0f} s, "
                f"test MSE {row['mse'] * 100:.3f}e-2 "
                f"(training mean: {row['mean_mse'] * 100:.3f}e-2)",
                flush=True,
            )
    print("\n| task | observed | epochs | wall s | test MSE ×10⁻² | mean predictor | published |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        published = PUBLISHED[row["task"]].get(row["fraction"], float("nan"))
        print(
            f"| {row['task']} | {row['fraction']:.0%} | {row['epochs']} | {row['seconds']:.0f} | "
            f"{row['mse'] * 100:.3f} | {row['mean_mse'] * 100:.3f} | {published:.3f} |"
        )


if __name__ == "__main__":
    main()

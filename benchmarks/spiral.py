"""The spiral benchmark of Chen et al. (2018): latent ODE against a GRU-with-Δt baseline.

Chen et al. 2018, *Neural Ordinary Differential Equations*, Sec. 5.1 and Table 2, report the
predictive RMSE on noisy 2-D spirals observed at n ∈ {30, 50, 100} irregular points:

    ===========  ======  ======  ======
    points        30      50      100
    ===========  ======  ======  ======
    RNN          0.3937  0.3202  0.1813
    Latent ODE   0.1642  0.1502  0.1346
    ===========  ======  ======  ======

Protocol (printed at start; the training knobs are command-line options)
------------------------------------------------------------------------
Data. ``latentode.data.make_spiral`` with the paper's settings: 1000 Archimedean spirals
``r = a + b·θ`` (a = 0, b = 0.3), half clockwise, on a dense grid of 1000 times over
``[0, 6π]`` (the grid of the torchdiffeq ``latent_ode.py`` example, one step = 6π/999 ≈ 0.019),
Gaussian noise std 0.3 on both coordinates. Each spiral is a window of 200 consecutive grid
points starting at a uniformly random grid index:

- the first 100 points are the trajectory the paper samples ("100 equally-spaced time steps");
  of these, n are observed, drawn at random without replacement (n = 100 observes all of them,
  as in the paper). Only these noisy points are ever shown to a model, in training and in test;
- the next 100 points are the "100 time points extending beyond those that were used for
  training" on which the paper reports its RMSE. They are never observed; models are scored
  there against the noise-free spiral (``SyntheticData.truth``).

The same 1000 spirals and the same noise serve every n (only the observed subset changes), so
the three settings differ in the number of points alone. Spirals are split 80/20 into train and
test at random (seeded); all reported numbers are on the 200 test spirals. Times go to the
models as the library encodes them (``IrregularDataset``, ``TimeScaler(origin="series")``): each
spiral's time 0 is its first observed point and one model time unit is the longest observed span
of the training spirals (≈ 99 grid steps), so the forecast times lie in about ``[1, 2]``.

Score. RMSE over every test spiral, every one of the 100 extrapolation times and both
coordinates, in the data's own units, of each model's point prediction: for the latent ODE the
decoded posterior mean ``z0 = E[q(z0 | x)]``; for the RNN its free-running rollout. The column
"ODE interp" is the latent ODE's RMSE on the 100 points of the observed half (not in the paper).

Models, trained the same way (same data, Adam, learning rate and schedule, batch size,
epochs, gradient clipping, seeds), each only ever fitting the observed points:

- latent ODE (:class:`latentode.model.LatentODEModel`): latent 16, a recognition GRU (with Δt,
  read backwards) of 32 units, a latent vector field of width 64 with 2 residual blocks, a
  linear readout ``z(t) → x(t)``, a Gaussian likelihood with the true noise std 0.3; loss
  −ELBO (one sample) with the KL weight warmed up linearly over the first 10 epochs; dopri5
  (rtol 1e-3, atol 1e-4) in training and test. Chen et al. used latent 4, a 25-unit RNN and
  one hidden layer of 20 units in the field and in the readout; at those sizes (``--latent-dim
  4 --encoder-hidden 25 --field-width 20 --field-depth 0``) our latent ODE underfits the
  dynamics within this budget (n = 30 tuning runs on seed 1: RMSE 0.70 after 100 epochs of
  batch 50 and 0.48 after 300, against 0.41 and 0.35 at the sizes used here);
- RNN baseline (:class:`DeltaTGRU`, the "RNN with time-delta input" of Chen et al.): a GRU of
  64 units fed ``(x_j, mask_j, t_{j+1} − t_j)`` that predicts the next observation ``x_{j+1}``
  through a one-hidden-layer readout; trained by one-step-ahead squared error (teacher
  forcing), it extrapolates by feeding its own predictions back with the Δt to each target
  time (the "classic RNN" of Rubanova et al. 2019).

Training: Adam, learning rate 1e-2 decayed geometrically to 3e-3, batches of 200 spirals, 800
epochs, gradient norm clipped at 1. Hyperparameters were chosen on n = 30 with ``--seed 1``
(other spirals, other noise, other split); the reported run uses ``--seed 0``.

Differences from the paper worth knowing: the paper's clockwise spirals are a different curve
(``r = b·50/θ`` shifted), here they are mirror images; its exact grid density, window placement,
readout and training length are not all stated, and its RNN details are not published. The
numbers are therefore comparable in kind, not identical in setting.

Run (single-threaded, all three settings, about 15–20 min on one core)::

    python benchmarks/spiral.py --plot spiral.png
    python benchmarks/spiral.py --quick          # smoke run, well under a minute
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from latentode.core import SolverConfig
from latentode.data import IrregularBatch, IrregularDataset, make_spiral, spiral_truth
from latentode.losses import masked_mse
from latentode.model import LatentODEModel

# points -> (latent ODE, RNN) predictive RMSE of Chen et al. 2018, Table 2
PAPER: dict[int, tuple[float, float]] = {
    30: (0.1642, 0.3937),
    50: (0.1502, 0.3202),
    100: (0.1346, 0.1813),
}
FEATURES = ("x", "y")


@dataclass(frozen=True)
class Settings:
    """Every knob of one benchmark run (printed at start)."""

    n_spirals: int = 1000
    n_grid: int = 1000
    observed_window: int = 100
    extrap_window: int = 100
    noise_std: float = 0.3
    test_fraction: float = 0.2
    seed: int = 0
    epochs: int = 800
    batch_size: int = 200
    lr: float = 1e-2
    lr_final: float = 3e-3
    clip_norm: float = 1.0
    latent_dim: int = 16
    encoder: str = "gru"
    encoder_hidden: int = 32
    field_width: int = 64
    field_depth: int = 2
    obs_std: float = 0.3
    kl_warmup_epochs: int = 10
    rnn_hidden: int = 64
    rtol: float = 1e-3
    atol: float = 1e-4
    log_every: int = 10


@dataclass(frozen=True)
class SpiralTask:
    """One setting's data: train series, test conditioning points and the scored truth.

    Attributes:
        train: Observed points of the training spirals (fits the time scale).
        test: Observed points of the test spirals, encoded with ``train``'s scaler.
        target_times: ``(n_test, extrap_window)`` model times of the scored points, each test
            spiral from its own origin (its first observed time), rows in ``test`` order.
        truth: ``(n_test, extrap_window, 2)`` noise-free values there.
        interp_times: ``(n_test, observed_window)`` model times of the observed half's grid.
        interp_truth: ``(n_test, observed_window, 2)`` noise-free values there.
    """

    train: IrregularDataset
    test: IrregularDataset
    target_times: torch.Tensor
    truth: torch.Tensor
    interp_times: torch.Tensor
    interp_truth: torch.Tensor


@dataclass(frozen=True)
class Result:
    """Scores of one setting."""

    points: int
    ode_rmse: float
    rnn_rmse: float
    ode_interp_rmse: float
    ode_seconds: float
    rnn_seconds: float


# ---------------------------------------------------------------------------------------------
# data


def make_windows(settings: Settings) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All spirals, densely: ``(times, noisy, clean, clockwise)``.

    Shapes ``(n_spirals, window)``, ``(n_spirals, window, 2)`` twice and ``(n_spirals,)``, with
    ``window = observed_window + extrap_window``; row ``i`` is spiral id ``i``.
    """
    window = settings.observed_window + settings.extrap_window
    data = make_spiral(
        n_series=settings.n_spirals,
        n_points=window,  # every window point, noisy: the subset is drawn per setting below
        n_grid=settings.n_grid,
        window=window,
        noise_std=settings.noise_std,
        random_state=settings.seed,
    )
    shape = (settings.n_spirals, window)
    # frames are sorted by id then time, `window` rows per id
    times = data.observed["time"].to_numpy().reshape(shape)  # (n_spirals, window)
    noisy = data.observed[list(FEATURES)].to_numpy().reshape(*shape, 2)  # (n_spirals, window, 2)
    clean = data.truth[list(FEATURES)].to_numpy().reshape(*shape, 2)  # (n_spirals, window, 2)
    if not np.array_equal(data.truth["time"].to_numpy().reshape(shape), times):
        raise RuntimeError("make_spiral's observed and truth frames are not aligned")
    return times, noisy, clean, data.params["clockwise"].to_numpy()


def make_task(
    settings: Settings,
    n_points: int,
    windows: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> SpiralTask:
    """Observe ``n_points`` of each spiral's first half; score on its second half."""
    times, noisy, clean, clockwise = windows
    n_spirals, half = settings.n_spirals, settings.observed_window
    rng = np.random.default_rng([settings.seed, n_points])
    # a uniformly random n-subset of the observed half, per spiral, in time order
    picked = np.sort(np.argsort(rng.random((n_spirals, half)), axis=1)[:, :n_points], axis=1)
    obs_t = np.take_along_axis(times, picked, axis=1)  # (n_spirals, n_points)
    obs_xy = np.take_along_axis(noisy, picked[..., None], axis=1)  # (n_spirals, n_points, 2)
    frame = pd.DataFrame(
        {
            "id": np.repeat(np.arange(n_spirals), n_points),
            "time": obs_t.ravel(),
            "x": obs_xy[..., 0].ravel(),
            "y": obs_xy[..., 1].ravel(),
        }
    )  # (n_spirals · n_points) rows

    split_rng = np.random.default_rng([settings.seed, 1])
    n_test = max(1, round(settings.test_fraction * n_spirals))
    is_test = np.zeros(n_spirals, dtype=bool)
    is_test[split_rng.permutation(n_spirals)[:n_test]] = True
    train = IrregularDataset.from_frame(frame[~is_test[frame["id"]]])
    test = IrregularDataset.from_frame(
        frame[is_test[frame["id"]]], fmt=train.fmt, scaler=train.scaler
    )

    # Model time of a user time t of test spiral i is scaler.transform(t, origin_i), origin_i its
    # first observed time: the time at which its z0 lives. Truth times go through the same map.
    rows = np.asarray(test.ids, dtype=np.int64)  # (n_test,) spiral ids in test order
    origins = test.origins[:, None]  # (n_test, 1)
    if not np.array_equal(test.origins, obs_t[rows, 0]):
        raise RuntimeError("test origins are not the spirals' first observed times")

    def at(cols: slice) -> tuple[torch.Tensor, torch.Tensor]:
        model_t = test.scaler.transform(times[rows, cols], origins)  # (n_test, n_cols)
        model_t = torch.as_tensor(model_t, dtype=test.dtype)
        truth = torch.as_tensor(clean[rows, cols], dtype=test.dtype)  # (n_test, n_cols, 2)
        # A perfect predictor must score 0: map the model times back and redraw the curve.
        back = test.scaler.inverse_transform(model_t.double().numpy(), origins)
        redrawn = np.stack(
            [
                spiral_truth(t, clockwise=bool(cw))
                for t, cw in zip(back, clockwise[rows], strict=True)
            ]
        )  # (n_test, n_cols, 2)
        error = rmse(torch.as_tensor(redrawn, dtype=test.dtype), truth)
        if error > 1e-4:
            raise RuntimeError(f"scored times are misaligned: a perfect predictor scores {error}")
        return model_t, truth

    target_times, truth = at(slice(half, half + settings.extrap_window))
    interp_times, interp_truth = at(slice(0, half))
    return SpiralTask(train, test, target_times, truth, interp_times, interp_truth)


def rmse(prediction: torch.Tensor, truth: torch.Tensor) -> float:
    """Root-mean-square error over every entry (series, time, coordinate)."""
    return float(torch.sqrt(torch.mean((prediction - truth) ** 2)))


def rmse_by_horizon(prediction: torch.Tensor, truth: torch.Tensor, n_parts: int = 4) -> str:
    """RMSE over consecutive blocks of forecast times (``(batch, n_times, f)`` inputs), as text."""
    blocks = torch.arange(truth.shape[1]).tensor_split(n_parts)
    return " ".join(f"{rmse(prediction[:, b], truth[:, b]):.3f}" for b in blocks)


# ---------------------------------------------------------------------------------------------
# RNN baseline


class DeltaTGRU(nn.Module):
    """The RNN baseline: a GRU with the time gap as an input, predicting the next observation.

    Step ``j`` reads ``(x_j · m_j, m_j, t_{j+1} − t_j)`` and predicts ``x_{j+1}`` from its state
    through a one-hidden-layer readout. Past the last observation it runs free: each prediction
    is fed back, with the gap to the next target time.

    Args:
        n_features: Observed features.
        hidden_dim: GRU state size. Default 32.
    """

    def __init__(self, n_features: int, hidden_dim: int = 32) -> None:
        super().__init__()
        self.hidden_dim = hidden_dim
        self.cell = nn.GRUCell(2 * n_features + 1, hidden_dim)
        self.readout = nn.Sequential(
            nn.Linear(hidden_dim, hidden_dim), nn.Tanh(), nn.Linear(hidden_dim, n_features)
        )

    def _read(
        self, batch: IrregularBatch, next_times: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced pass over the observations.

        ``next_times (batch, max_obs)``: the time each step predicts. Returns the predictions
        ``(batch, max_obs, n_features)`` and the state after each series' last observation
        ``(batch, hidden)`` (padding positions leave the state unchanged).
        """
        gaps = (next_times - batch.times).unsqueeze(-1)  # (batch, max_obs, 1)
        inputs = torch.cat([batch.values * batch.mask, batch.mask, gaps], dim=-1)  # (B, T, 2f + 1)
        real = batch.position_mask.unsqueeze(-1)  # (batch, max_obs, 1)
        h = inputs.new_zeros(batch.batch_size, self.hidden_dim)
        states = []
        for j in range(batch.max_obs):
            h = torch.where(real[:, j], self.cell(inputs[:, j], h), h)
            states.append(h)
        # one readout call for all steps: (batch, max_obs, hidden) -> (batch, max_obs, f)
        return self.readout(torch.stack(states, dim=1)), h

    def loss(self, batch: IrregularBatch) -> torch.Tensor:
        """Mean squared one-step-ahead error over the observed entries after the first."""
        next_times = torch.cat([batch.times[:, 1:], batch.times[:, -1:]], dim=1)  # (B, max_obs)
        predictions, _ = self._read(batch, next_times)
        # prediction j is for observation j + 1; padding has mask 0
        return masked_mse(predictions[:, :-1], batch.values[:, 1:], batch.mask[:, 1:])

    def predict(self, cond: IrregularBatch, target_times: torch.Tensor) -> torch.Tensor:
        """Free-running forecast ``(batch, n_times, f)`` at ``target_times (batch, n_times)``.

        Every target time must come after the series' last observation.
        """
        last = cond.lengths - 1  # (batch,)
        rows = torch.arange(cond.batch_size)
        next_times = torch.cat([cond.times[:, 1:], cond.times[:, -1:]], dim=1)  # (B, max_obs)
        next_times[rows, last] = target_times[:, 0]
        predictions, h = self._read(cond, next_times)
        y = predictions[rows, last]  # (batch, f): the forecast for target_times[:, 0]
        observed = torch.ones_like(y)
        out = [y]
        for k in range(1, target_times.shape[1]):
            gap = (target_times[:, k] - target_times[:, k - 1]).unsqueeze(-1)  # (batch, 1)
            h = self.cell(torch.cat([y, observed, gap], dim=-1), h)  # input (batch, 2f + 1)
            y = self.readout(h)
            out.append(y)
        return torch.stack(out, dim=1)  # (batch, n_times, f)


# ---------------------------------------------------------------------------------------------
# training and scoring


def train(
    name: str,
    model: nn.Module,
    batch_loss: Callable[[IrregularBatch, int], torch.Tensor],
    data: IrregularDataset,
    settings: Settings,
) -> float:
    """Fit ``model`` by Adam on mini-batches of ``data``; returns the seconds it took.

    ``batch_loss(batch, step)`` gives the scalar to minimise at optimiser step ``step``
    (counted from 0). The learning rate decays geometrically from ``lr`` to ``lr_final`` over
    the run; gradients are clipped to ``clip_norm``. Batches are drawn from a generator seeded
    by ``settings.seed``.
    """
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.lr)
    gamma = (settings.lr_final / settings.lr) ** (1 / max(settings.epochs - 1, 1))
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimiser, gamma)
    order = torch.Generator().manual_seed(settings.seed)
    model.train()
    start, step = time.perf_counter(), 0
    for epoch in range(settings.epochs):
        total, n_batches = 0.0, 0
        for idx in torch.randperm(len(data), generator=order).split(settings.batch_size):
            loss = batch_loss(data.batch(idx.tolist()), step)
            step += 1
            optimiser.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), settings.clip_norm)
            optimiser.step()
            total, n_batches = total + float(loss.detach()), n_batches + 1
        schedule.step()
        if (epoch + 1) % settings.log_every and epoch not in (0, settings.epochs - 1):
            continue
        print(
            f"  {name:10s} epoch {epoch + 1:3d}/{settings.epochs}  loss {total / n_batches:9.4f}"
            f"  {time.perf_counter() - start:7.1f}s",
            flush=True,
        )
    model.eval()
    return time.perf_counter() - start


def build_latent_ode(settings: Settings) -> LatentODEModel:
    """The latent ODE of the protocol (see the module docstring)."""
    solver = SolverConfig(method="dopri5", rtol=settings.rtol, atol=settings.atol)
    return LatentODEModel(
        n_features=len(FEATURES),
        latent_dim=settings.latent_dim,
        encoder=settings.encoder,
        encoder_hidden=settings.encoder_hidden,
        decoder_width=settings.field_width,
        decoder_depth=settings.field_depth,  # 0: Linear → tanh → Linear, one hidden layer
        obs_std=settings.obs_std,
        train_solver=solver,
    )


@torch.no_grad()
def latent_ode_mean(
    model: LatentODEModel, cond: IrregularBatch, times: torch.Tensor
) -> torch.Tensor:
    """Decoded posterior mean ``(batch, n_times, f)`` at model ``times (batch, n_times)``."""
    model.eval()
    q = model.encoder(cond)
    return model.decoder(q.loc.unsqueeze(0), times)[0]  # (1, B, T, f) -> (B, T, f)


def run_setting(settings: Settings, n_points: int, task: SpiralTask) -> tuple[Result, dict]:
    """Train both models on one setting and score them; also returns test predictions."""
    steps = math.ceil(len(task.train) / settings.batch_size)
    warmup = max(settings.kl_warmup_epochs, 0) * steps

    torch.manual_seed(settings.seed)
    ode = build_latent_ode(settings)
    draws = torch.Generator().manual_seed(settings.seed + 1)

    def ode_loss(batch: IrregularBatch, step: int) -> torch.Tensor:
        kl_weight = min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0  # linear warm-up
        terms, _ = ode.loss(batch, batch, n_samples=1, kl_weight=kl_weight, generator=draws)
        return terms.loss

    ode_seconds = train("latent ODE", ode, ode_loss, task.train, settings)

    torch.manual_seed(settings.seed)
    rnn = DeltaTGRU(len(FEATURES), settings.rnn_hidden)
    rnn_seconds = train("RNN", rnn, lambda batch, step: rnn.loss(batch), task.train, settings)

    cond = task.test.batch()
    ode_pred = latent_ode_mean(ode, cond, task.target_times)
    ode_interp = latent_ode_mean(ode, cond, task.interp_times)
    with torch.no_grad():
        rnn_pred = rnn.predict(cond, task.target_times)
    result = Result(
        points=n_points,
        ode_rmse=rmse(ode_pred, task.truth),
        rnn_rmse=rmse(rnn_pred, task.truth),
        ode_interp_rmse=rmse(ode_interp, task.interp_truth),
        ode_seconds=ode_seconds,
        rnn_seconds=rnn_seconds,
    )
    return result, {"ode": ode_pred, "rnn": rnn_pred, "ode_interp": ode_interp, "cond": cond}


# ---------------------------------------------------------------------------------------------
# reporting


def print_table(results: Sequence[Result]) -> None:
    """The final table: our RMSEs next to the paper's, and the training time."""
    header = (
        f"{'points':>6} | {'latent ODE':>10} | {'RNN':>8} | {'paper ODE':>9} | "
        f"{'paper RNN':>9} | {'ODE interp':>10} | {'train s (ODE + RNN)':>19}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        paper_ode, paper_rnn = PAPER.get(r.points, (math.nan, math.nan))
        seconds = f"{r.ode_seconds:.0f} + {r.rnn_seconds:.0f}"
        print(
            f"{r.points:>6} | {r.ode_rmse:>10.4f} | {r.rnn_rmse:>8.4f} | {paper_ode:>9.4f} | "
            f"{paper_rnn:>9.4f} | {r.ode_interp_rmse:>10.4f} | {seconds:>19}"
        )


def plot(
    path: str,
    tasks: dict[int, SpiralTask],
    outputs: dict[int, dict],
    results: Sequence[Result],
) -> None:
    """One test spiral per setting: truth, observed points, latent ODE and RNN predictions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 5), squeeze=False)
    for ax, r in zip(axes[0], results, strict=True):
        task, out, row = tasks[r.points], outputs[r.points], 0
        cond = out["cond"]
        n_obs = int(cond.lengths[row])
        truth = torch.cat([task.interp_truth[row], task.truth[row]])  # (window, 2)
        ode = torch.cat([out["ode_interp"][row], out["ode"][row]])  # (window, 2)
        ax.plot(truth[:, 0], truth[:, 1], color="0.6", lw=2, label="truth")
        ax.plot(ode[:, 0], ode[:, 1], color="C0", label="latent ODE (mean)")
        ax.plot(out["rnn"][row, :, 0], out["rnn"][row, :, 1], color="C3", label="RNN")
        xy = cond.values[row, :n_obs]  # (n_obs, 2)
        ax.scatter(xy[:, 0], xy[:, 1], s=10, color="k", label="observed")
        boundary = task.truth[row, 0]
        ax.scatter([boundary[0]], [boundary[1]], marker="x", s=60, color="k", label="extrap. start")
        ax.set_title(
            f"n = {r.points}: RMSE ODE {r.ode_rmse:.3f}, RNN {r.rnn_rmse:.3f} (all test spirals)"
        )
        ax.set_aspect("equal")
    axes[0, 0].legend(loc="best", fontsize=8)
    fig.suptitle(
        f"Spirals (Chen et al. 2018), test spiral id {tasks[results[0].points].test.ids[0]}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot written to {path}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options; defaults are :class:`Settings`'."""
    d = Settings()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--points", type=int, nargs="+", default=[30, 50, 100])
    p.add_argument("--n-spirals", type=int, default=d.n_spirals)
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--lr-final", type=float, default=d.lr_final)
    p.add_argument("--kl-warmup-epochs", type=int, default=d.kl_warmup_epochs)
    p.add_argument("--encoder", choices=["gru", "odernn"], default=d.encoder)
    p.add_argument("--latent-dim", type=int, default=d.latent_dim)
    p.add_argument("--encoder-hidden", type=int, default=d.encoder_hidden)
    p.add_argument("--field-width", type=int, default=d.field_width)
    p.add_argument("--field-depth", type=int, default=d.field_depth)
    p.add_argument("--rnn-hidden", type=int, default=d.rnn_hidden)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--log-every", type=int, default=d.log_every, help="epochs between lines")
    p.add_argument("--threads", type=int, default=1, help="torch threads (timings: 1)")
    p.add_argument("--quick", action="store_true", help="smoke run: 60 spirals, 2 epochs")
    p.add_argument("--plot", metavar="PATH.png", default=None)
    args = p.parse_args(argv)
    bad = [n for n in args.points if not 2 <= n <= d.observed_window]
    if bad:
        p.error(f"--points must lie in [2, {d.observed_window}] (the observed half); got {bad}")
    return args


def main(argv: Sequence[str] | None = None) -> list[Result]:
    """Run the benchmark; returns one :class:`Result` per setting."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    settings = Settings(
        n_spirals=args.n_spirals,
        seed=args.seed,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        lr_final=args.lr_final,
        kl_warmup_epochs=args.kl_warmup_epochs,
        encoder=args.encoder,
        latent_dim=args.latent_dim,
        encoder_hidden=args.encoder_hidden,
        field_width=args.field_width,
        field_depth=args.field_depth,
        rnn_hidden=args.rnn_hidden,
        log_every=args.log_every,
    )
    if args.quick:
        settings = Settings(**{**asdict(settings), "n_spirals": 60, "epochs": 2})
    print("spiral benchmark (Chen et al. 2018, Table 2)")
    print(f"  points: {args.points}  threads: {torch.get_num_threads()}  torch {torch.__version__}")
    for key, value in asdict(settings).items():
        print(f"  {key}: {value}")

    start = time.perf_counter()
    windows = make_windows(settings)
    results, tasks, outputs = [], {}, {}
    for n_points in args.points:
        task = make_task(settings, n_points, windows)
        print(
            f"n = {n_points}: {len(task.train)} train / {len(task.test)} test spirals, "
            f"1 model time unit = {task.train.scaler.scale_:.4f} rad",
            flush=True,
        )
        result, out = run_setting(settings, n_points, task)
        print(
            f"n = {n_points}: RMSE latent ODE {result.ode_rmse:.4f}, RNN {result.rnn_rmse:.4f}; "
            "by forecast quarter (steps 1-25, 26-50, 51-75, 76-100): latent ODE "
            f"{rmse_by_horizon(out['ode'], task.truth)}, "
            f"RNN {rmse_by_horizon(out['rnn'], task.truth)}",
            flush=True,
        )
        results.append(result)
        tasks[n_points], outputs[n_points] = task, out

    print()
    print_table(results)
    print(f"total wall time {time.perf_counter() - start:.0f}s")
    if args.plot:
        plot(args.plot, tasks, outputs, results)
    return results


if __name__ == "__main__":
    main()

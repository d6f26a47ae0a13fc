"""What the solver does at a known input's change points, and what it costs.

``dz/dt = u(t) − z`` with ``u`` held at 1 on [0, 1), 3 on [1, 2) and 0 after, solved by dopri5
from z(0) = 0 and 0.5 to six output times, against the exact solution. Two ways:

- **breaks** (what latentode does with known inputs): the solver steps to each change point,
  the input part of the state is set there, and the next step starts from a fresh slope
  (:func:`latentode.core.solve_rows`, ``breaks``/``jump``);
- **blind**: the field reads ``u(t)`` itself, so the solver meets each change inside a step.

Prints, per tolerance, the largest error and the field evaluations per row of each.

Run: ``python benchmarks/breaks.py`` (a second).
"""

from __future__ import annotations

import math

import torch

from latentode.core import SolverConfig, solve_rows

PIECES = ((0.0, 1.0, 1.0), (1.0, 2.0, 3.0), (2.0, math.inf, 0.0))


def exact(z: float, t: float) -> float:
    for lo, hi, u in PIECES:
        if t <= lo:
            break
        end = min(t, hi)
        z = u + (z - u) * math.exp(-(end - lo))
    return z


def main() -> None:
    dtype = torch.float64
    z0 = torch.tensor([[0.0, 1.0], [0.5, 1.0]], dtype=dtype)  # (z, u)
    times = torch.linspace(0.0, 3.0, 7, dtype=dtype)[1:].repeat(2, 1)
    truth = torch.tensor([[exact(z, float(t)) for t in times[0]] for z in (0.0, 0.5)])
    breaks = torch.tensor([[1.0, 2.0], [1.0, 2.0]], dtype=dtype)
    after = torch.tensor([3.0, 0.0], dtype=dtype)  # u past each change point

    def held(t, y):
        return torch.stack([y[:, 1] - y[:, 0], torch.zeros_like(y[:, 1])], dim=-1)

    def jump(rows, index, y):
        return torch.stack([y[:, 0], after[index]], dim=-1)

    def blind(t, y):
        u = torch.where(t < 1, 1.0, torch.where(t < 2, 3.0, 0.0)).to(y.dtype)
        return torch.stack([u - y[:, 0], torch.zeros_like(u)], dim=-1)

    print(f"{'rtol':>6} {'breaks: error':>14} {'NFE/row':>8} {'blind: error':>13} {'NFE/row':>8}")
    for rtol in (1e-3, 1e-5, 1e-8):
        cfg = SolverConfig("dopri5", rtol=rtol, atol=rtol / 100)
        a = solve_rows(held, z0, times, cfg, breaks=breaks, jump=jump)
        b = solve_rows(blind, z0, times, cfg)
        err_a = float((a.ys[..., 0] - truth).abs().max())
        err_b = float((b.ys[..., 0] - truth).abs().max())
        print(
            f"{rtol:>6g} {err_a:>14.1e} {a.stats.row_nfe_forward / 2:>8.0f} "
            f"{err_b:>13.1e} {b.stats.row_nfe_forward / 2:>8.0f}"
        )


if __name__ == "__main__":
    main()

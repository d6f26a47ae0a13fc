"""`ODERNNEncoder` (Rubanova et al. 2019): an ODE between observations, a GRU at them."""

from __future__ import annotations

import torch

from latentode._validation import check_int
from latentode.core.fixed_step import FIXED_STEP_METHODS, FixedStepSolver
from latentode.core.vector_field import VectorField
from latentode.encoders.base import Encoder

__all__ = ["ODERNNEncoder"]


class ODERNNEncoder(Encoder):
    """ODE-RNN: between two observations the state follows its own learned ODE.

    Going backwards, from each series' later observation time to its earlier one, the state is
    integrated by a :class:`~latentode.core.VectorField` with a vectorised fixed-step solver,
    each series with its own step size ``Δt / n_substeps``; at the observation a GRU cell
    updates it. After the first observation the state is carried on to time 0, where ``z0``
    lives.

    Args:
        n_features: Features per observation.
        latent_dim: Size of ``z0``.
        hidden_dim: State size. Default 32.
        n_substeps: Solver steps between two observations. Default 2.
        method: ``"euler"``, ``"midpoint"`` or ``"rk4"``. Default ``"euler"``.
        field_width: Width of the vector field. Default 32.
        field_depth: Residual blocks in the vector field. Default 1.
        n_static: Size of a per-series input read at every observation. Default 0.
        n_inputs: Size of a per-observation input (known inputs). Default 0.
    """

    def __init__(
        self,
        n_features: int,
        latent_dim: int,
        hidden_dim: int = 32,
        *,
        n_substeps: int = 2,
        method: str = "euler",
        field_width: int = 32,
        field_depth: int = 1,
        n_static: int = 0,
        n_inputs: int = 0,
    ) -> None:
        super().__init__(n_features, latent_dim, hidden_dim, n_static=n_static, n_inputs=n_inputs)
        self.n_substeps = check_int("n_substeps", n_substeps, minimum=1)
        if method not in FIXED_STEP_METHODS:
            raise ValueError(
                f"`method` must be one of {sorted(FIXED_STEP_METHODS)}; got {method!r}"
            )
        self.method = method
        self.stepper = FixedStepSolver(method, self.n_substeps)
        self.field = VectorField(
            hidden_dim, width=field_width, depth=field_depth, norm="none", zero_init=True
        )
        self.nfe = 0  # field evaluations of the latest forward pass

    def forward(self, batch, static=None, inputs=None, present=None):  # type: ignore[override]
        self.nfe = 0
        return super().forward(batch, static, inputs, present)

    def evolve(self, h: torch.Tensor, t_from: torch.Tensor, t_to: torch.Tensor) -> torch.Tensor:
        self.nfe += self.stepper.nfe
        return self.stepper(self.field, h, t_from, t_to)

    def finish(self, h: torch.Tensor, t_first: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
        return self.evolve(h, t_first, torch.zeros_like(t_first))

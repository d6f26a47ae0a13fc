"""Neural flows (Biloš et al., NeurIPS 2021): the solution map ``z(t) = F(t, z0)`` itself.

A neural ODE computes ``z(t)`` by integrating a vector field; a neural flow models the map
directly, so a trajectory costs one network evaluation per output time and no solver. Each
flow here satisfies the two properties of a solution map of an ODE:

- ``F(0, z) = z`` exactly: every update is gated by a time embedding ``φ(t) = tanh(α ⊙ t)``
  with ``φ(0) = 0``;
- ``F(t, ·)`` is invertible for every ``t``: trajectories never cross.

:class:`ResNetFlow` is the residual block ``z + f(z)`` of the core with its step made
continuous: ``z + φ(t) ⊙ f(t, z)``, with ``f`` a :class:`~latentode.core.VectorField` whose
linear layers have norm at most 1 (``W / max(1, ‖W‖_F)``) and which is scaled so that
``Lip_z(f) ≤ 0.9``; as ``|φ| < 1``, each layer is the identity plus a contraction, invertible by
fixed-point iteration. :class:`GRUFlow` is the GRU-shaped flow of the paper,
``h + φ(t) ⊙ u ⊙ (c − h)`` with its gates bounded (``u ≤ 2/5``, ``r ≤ 4/5``) and weights of
norm at most 1.
:class:`CouplingFlow` updates half of ``z`` from the other half,
``b ⊙ exp(φ(t) ⊙ s(t, a)) + φ(t) ⊙ m(t, a)``, invertible in closed form.

Every flow takes ``t (...)`` and ``z (..., dim)`` and returns ``(..., dim)``; ``t`` is one
time per row (the flow starts from ``z`` at time 0).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from latentode._validation import check_choice, check_int
from latentode.core.vector_field import VectorField

__all__ = ["FLOWS", "CouplingFlow", "GRUFlow", "ResNetFlow", "make_flow"]

_CONTRACTION = 0.9  # the Lipschitz bound each invertible residual layer keeps below 1


class _TimeGate(nn.Module):
    """``φ(t) = tanh(α ⊙ t)``, one learned rate per latent dimension: ``φ(0) = 0``, ``|φ| < 1``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.rate = nn.Parameter(torch.ones(dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """``t (...)`` → ``(..., dim)``."""
        return torch.tanh(t.unsqueeze(-1) * self.rate)


class _NormAtMostOne(nn.Module):
    """``W / max(1, ‖W‖_F)``: a weight of spectral norm at most 1 (‖W‖₂ ≤ ‖W‖_F).

    Unlike power-iteration spectral normalisation it is a pure function of ``W``: no state
    that changes with every call, the same bound in training and evaluation, and exact.
    """

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight / torch.clamp(torch.linalg.vector_norm(weight), min=1.0)


def _bounded(linear: nn.Linear) -> nn.Linear:
    parametrize.register_parametrization(linear, "weight", _NormAtMostOne())
    return linear


def _normalised_field(dim: int, width: int, depth: int) -> tuple[VectorField, float]:
    """A time-dependent vector field with every linear layer's norm at most 1, and the bound
    on its Lipschitz constant in ``z``: tanh and such layers give 1, each residual block at
    most doubles it."""
    field = VectorField(dim, width=width, depth=depth, norm="none", time_dependent=True)
    for module in list(field.modules()):
        if isinstance(module, nn.Linear):
            _bounded(module)
    return field, float(2**depth)


class _Layers(nn.Module):
    """A stack of flow layers, composed in order; the inverse undoes them in reverse."""

    layers: nn.ModuleList

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            z = layer(t, z)
        return z

    def inverse(self, t: torch.Tensor, y: torch.Tensor, iterations: int = 100) -> torch.Tensor:
        """``z`` with ``F(t, z) = y``: each layer undone, last first."""
        for layer in reversed(self.layers):
            y = layer.inverse(t, y, iterations)
        return y


class _ResidualLayer(nn.Module):
    def __init__(self, dim: int, width: int, depth: int) -> None:
        super().__init__()
        self.field, bound = _normalised_field(dim, width, depth)
        self.scale = _CONTRACTION / bound
        self.gate = _TimeGate(dim)

    def update(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.gate(t) * self.scale * self.field(t, z)

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return z + self.update(t, z)

    def inverse(self, t: torch.Tensor, y: torch.Tensor, iterations: int) -> torch.Tensor:
        z = y  # z = y - update(t, z) is a contraction in z: iterate to its fixed point
        for _ in range(iterations):
            z = y - self.update(t, z)
        return z


class ResNetFlow(_Layers):
    """``n_layers`` × ``z + φ(t) ⊙ c·f(t, z)`` with ``Lip_z(c·f) ≤ 0.9`` (see the module).

    Args:
        dim: Latent size.
        width: Width of each layer's vector field. Default 64.
        depth: Residual blocks in each layer's vector field. Default 1.
        n_layers: Flow layers composed. Default 2.
    """

    def __init__(self, dim: int, *, width: int = 64, depth: int = 1, n_layers: int = 2) -> None:
        super().__init__()
        dim, width = check_int("dim", dim, minimum=1), check_int("width", width, minimum=1)
        depth = check_int("depth", depth, minimum=0)
        n_layers = check_int("n_layers", n_layers, minimum=1)
        self.layers = nn.ModuleList(_ResidualLayer(dim, width, depth) for _ in range(n_layers))


class _GRULayer(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.update_gate = _bounded(nn.Linear(dim + 1, dim))
        self.reset_gate = _bounded(nn.Linear(dim + 1, dim))
        self.candidate = _bounded(nn.Linear(dim + 1, dim))
        self.gate = _TimeGate(dim)

    def update(self, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        t_col = t.unsqueeze(-1).expand(*h.shape[:-1], 1).to(h.dtype)
        ht = torch.cat([h, t_col], dim=-1)
        u = 0.4 * torch.sigmoid(self.update_gate(ht))  # the paper's α = 2/5
        r = 0.8 * torch.sigmoid(self.reset_gate(ht))  # β = 4/5
        c = torch.tanh(self.candidate(torch.cat([r * h, t_col], dim=-1)))
        return self.gate(t) * u * (c - h)

    def forward(self, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return h + self.update(t, h)

    def inverse(self, t: torch.Tensor, y: torch.Tensor, iterations: int) -> torch.Tensor:
        h = y
        for _ in range(iterations):
            h = y - self.update(t, h)
        return h


class GRUFlow(_Layers):
    """``n_layers`` × the GRU flow ``h + φ(t) ⊙ u ⊙ (c − h)`` of Biloš et al. (2021).

    Args:
        dim: Latent size.
        width: Unused by the GRU's gates (they are ``dim`` wide); kept for one signature.
        depth: Unused; kept for one signature.
        n_layers: Flow layers composed. Default 2.
    """

    def __init__(self, dim: int, *, width: int = 64, depth: int = 1, n_layers: int = 2) -> None:
        super().__init__()
        dim = check_int("dim", dim, minimum=1)
        n_layers = check_int("n_layers", n_layers, minimum=1)
        self.layers = nn.ModuleList(_GRULayer(dim) for _ in range(n_layers))


class _CouplingLayer(nn.Module):
    def __init__(self, dim: int, width: int, depth: int, flip: bool) -> None:
        super().__init__()
        keep = torch.zeros(dim, dtype=torch.bool)
        keep[: dim // 2] = True  # the half that conditions the other
        self.register_buffer("keep", keep.flip(0) if flip else keep, persistent=False)
        self.shift = VectorField(dim, width=width, depth=depth, norm="none", time_dependent=True)
        self.log_scale = VectorField(
            dim, width=width, depth=depth, norm="none", time_dependent=True, zero_init=True
        )
        self.gate = _TimeGate(dim)

    def _parts(self, t: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = z * self.keep  # only the kept half enters
        move = (~self.keep) * self.gate(t)  # (..., dim): the moved half's φ(t), 0 elsewhere
        return move * torch.tanh(self.log_scale(t, a)), move * self.shift(t, a)

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        log_scale, shift = self._parts(t, z)
        return z * torch.exp(log_scale) + shift

    def inverse(self, t: torch.Tensor, y: torch.Tensor, iterations: int) -> torch.Tensor:
        log_scale, shift = self._parts(t, y)  # the kept half is unchanged, so y gives it
        return (y - shift) * torch.exp(-log_scale)


class CouplingFlow(_Layers):
    """``n_layers`` affine coupling layers, alternating halves (Biloš et al. 2021).

    A layer keeps half ``a`` of ``z`` and moves the other, ``b ⊙ exp(φ(t) ⊙ s(t, a)) +
    φ(t) ⊙ m(t, a)`` (``s`` through tanh, so the scale stays within ``e^{±1}``). With one
    latent dimension nothing can condition the move, so ``dim >= 2``.

    Args:
        dim: Latent size (at least 2).
        width: Width of the scale and shift fields. Default 64.
        depth: Residual blocks in each. Default 1.
        n_layers: Coupling layers (even numbers move both halves equally). Default 2.
    """

    def __init__(self, dim: int, *, width: int = 64, depth: int = 1, n_layers: int = 2) -> None:
        super().__init__()
        dim = check_int("dim", dim, minimum=2)
        width = check_int("width", width, minimum=1)
        depth = check_int("depth", depth, minimum=0)
        n_layers = check_int("n_layers", n_layers, minimum=1)
        self.layers = nn.ModuleList(
            _CouplingLayer(dim, width, depth, flip=bool(i % 2)) for i in range(n_layers)
        )


FLOWS: dict[str, type[_Layers]] = {
    "resnet": ResNetFlow,
    "gru": GRUFlow,
    "coupling": CouplingFlow,
}
"""Flow name → class."""


def make_flow(name: str, dim: int, **kwargs: int) -> _Layers:
    """The flow ``name`` (one of :data:`FLOWS`) over ``dim`` latent dimensions."""
    return FLOWS[check_choice("flow", name, FLOWS)](dim, **kwargs)

"""Decoders: latent initial states → trajectories and observation means at any times."""

from latentode.decoders.flow import FlowDecoder
from latentode.decoders.level import LEVELS, Anchor, NoLevel, SeriesLevel
from latentode.decoders.ode import ODEDecoder

DECODERS = {"ode": ODEDecoder, "flow": FlowDecoder}
"""Decoder name → class: a Neural ODE, or a neural flow (no solver)."""

__all__ = ["DECODERS", "LEVELS", "Anchor", "FlowDecoder", "NoLevel", "ODEDecoder", "SeriesLevel"]

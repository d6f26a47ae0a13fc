"""Decoders: latent initial states → trajectories and observation means at any times."""

from latentode.decoders.level import LEVELS, Anchor, NoLevel, SeriesLevel
from latentode.decoders.ode import ODEDecoder

__all__ = ["LEVELS", "Anchor", "NoLevel", "ODEDecoder", "SeriesLevel"]

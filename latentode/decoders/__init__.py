"""Decoders: latent initial states → trajectories and observation means at any times."""

from latentode.decoders.ode import ODEDecoder

__all__ = ["ODEDecoder"]

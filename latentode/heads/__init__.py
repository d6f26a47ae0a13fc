"""Heads: observation likelihoods read from the latent trajectory."""

from latentode.heads.gaussian import GaussianHead

HEADS: dict[str, type] = {"gaussian": GaussianHead}

__all__ = ["HEADS", "GaussianHead"]

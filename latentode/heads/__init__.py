"""Heads: observation likelihoods read from the latent trajectory."""

from latentode.heads.gaussian import GaussianHead
from latentode.heads.poisson import PoissonHead

HEADS: dict[str, type] = {"gaussian": GaussianHead}

__all__ = ["HEADS", "GaussianHead", "PoissonHead"]

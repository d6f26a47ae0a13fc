"""The scikit-learn-style estimator: a pandas frame in, a pandas frame out.

:class:`LatentODE` is the facade; see its module for where each part of the work lives.
"""

from latentode.estimator.latent_ode import LatentODE
from latentode.estimator.predictor import NonFiniteModelError, Predictor

__all__ = ["LatentODE", "NonFiniteModelError", "Predictor"]

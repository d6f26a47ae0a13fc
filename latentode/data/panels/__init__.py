"""Five seeded families of irregular panels, each with its noise-free ground truth.

Where :mod:`latentode.data.synthetic` reproduces the toy problems of the latent-ODE papers, these
are small stand-ins for the panels such models meet in practice. Every series has its own
irregular times (no shared grid), and its own parameters, returned in ``params``:

- :func:`make_oscillators`: damped harmonic oscillators, position and scaled velocity, with
  entries missing at random (a two-feature, partially observed mechanical system);
- :func:`make_absorption`: one-compartment pharmacokinetics with first-order absorption, sampled
  on a jittered clinical schedule with dropped visits and proportional error;
- :func:`make_growth`: children's heights on ~yearly occasions, a per-child level and slope and a
  common curvature (after nlme's ``Oxboys``);
- :func:`make_lotka_volterra`: predator–prey cycles, integrated with fixed-step RK4, entries
  missing at random;
- :func:`make_sparse_sines`: 4 to 12 noisy points of a slow sine per series, the sparse regime.

Every generator returns a :class:`~latentode.data.synthetic.SyntheticData`: ``observed`` is the
long frame ``["id", "time", *features]`` (NaN where a feature is not observed; only rows with at
least one observed feature), ``truth`` the noise-free values at every observed time and at 50
evenly spaced times over each series' own window ``[first, last observed time]``. Only numpy and
pandas are used, and one ``numpy.random.Generator`` stream, so a seed fixes the whole dataset.

:data:`PANELS` maps the five family names to their generators;
:data:`latentode.data.generators.GENERATORS` and :func:`~latentode.data.generators.make_dataset`
cover these *and* the toy problems of :mod:`~latentode.data.synthetic`. The families live one per
module (``oscillators``, ``absorption``, ``growth``, ``lotka_volterra``, ``sparse_sines``) over the
shared helpers of ``_common``.

Example:
    >>> from latentode.data.panels import make_growth
    >>> data = make_growth(n_series=3, random_state=0)
    >>> list(data.observed.columns), list(data.params.columns)
    (['id', 'time', 'height'], ['id', 'level', 'slope', 'curvature'])
"""

from __future__ import annotations

from collections.abc import Callable

from latentode.data.panels.absorption import make_absorption
from latentode.data.panels.growth import make_growth
from latentode.data.panels.lotka_volterra import make_lotka_volterra
from latentode.data.panels.oscillators import make_oscillators
from latentode.data.panels.sparse_sines import make_sparse_sines
from latentode.data.synthetic import SyntheticData

__all__ = [
    "PANELS",
    "make_absorption",
    "make_growth",
    "make_lotka_volterra",
    "make_oscillators",
    "make_sparse_sines",
]

PANELS: dict[str, Callable[..., SyntheticData]] = {
    "oscillators": make_oscillators,
    "absorption": make_absorption,
    "growth": make_growth,
    "lotka_volterra": make_lotka_volterra,
    "sparse_sines": make_sparse_sines,
}
"""The five panel families of this package, by name."""

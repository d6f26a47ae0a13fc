"""The registry of built-in synthetic datasets: one name → generator map and its dispatcher.

Both the literature toys of :mod:`latentode.data.synthetic` and the panel families of
:mod:`latentode.data.panels` are registered here, so there is one list of names: the one that
``latentode.data`` exports and the Lightning data module accepts as ``data``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from latentode._validation import check_choice
from latentode.data.panels import PANELS
from latentode.data.synthetic import SyntheticData, make_periodic, make_spiral

__all__ = ["GENERATORS", "make_dataset"]

GENERATORS: dict[str, Callable[..., SyntheticData]] = {
    "periodic": make_periodic,
    "spiral": make_spiral,
    **PANELS,
}
"""Every built-in generator by name: the literature toys, then :data:`~latentode.data.PANELS`."""


def make_dataset(name: str, **kwargs: Any) -> SyntheticData:
    """Generate the built-in synthetic dataset ``name`` (a key of :data:`GENERATORS`).

    Args:
        name: One of

            - ``"periodic"``: :func:`~latentode.data.synthetic.make_periodic`;
            - ``"spiral"``: :func:`~latentode.data.synthetic.make_spiral`;
            - ``"oscillators"``: :func:`~latentode.data.panels.make_oscillators`;
            - ``"absorption"``: :func:`~latentode.data.panels.make_absorption`;
            - ``"growth"``: :func:`~latentode.data.panels.make_growth`;
            - ``"lotka_volterra"``: :func:`~latentode.data.panels.make_lotka_volterra`;
            - ``"sparse_sines"``: :func:`~latentode.data.panels.make_sparse_sines`.
        **kwargs: Passed to the generator (see its docstring).

    Returns:
        The generator's :class:`~latentode.data.synthetic.SyntheticData`.

    Raises:
        ValueError: ``name`` is not a registered generator.
        TypeError: The generator does not take one of ``kwargs``.

    Example:
        >>> from latentode.data.generators import make_dataset
        >>> make_dataset("spiral", n_series=2, n_points=5, random_state=0).observed.shape
        (10, 4)
        >>> make_dataset("sparse_sines", n_series=3, random_state=0).params.shape
        (3, 5)
    """
    check_choice("name", name, GENERATORS)
    return GENERATORS[name](**kwargs)

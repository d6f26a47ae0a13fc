"""Property test: any valid irregular frame goes through fit → predict → sample, finite."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from latentode.estimator import LatentODE

TINY = {
    "latent_dim": 2,
    "encoder_hidden": 3,
    "decoder_width": 4,
    "decoder_depth": 1,
    "max_epochs": 1,
    "batch_size": 4,
    "random_state": 0,
    "val_fraction": 0.0,
}


@st.composite
def irregular_frames(draw):
    """Ragged series, duplicate-free random times, NaN anywhere that leaves data to learn."""
    n_series = draw(st.integers(2, 5))
    n_features = draw(st.integers(1, 3))
    times_of = st.lists(
        st.floats(0.0, 50.0, allow_nan=False, allow_infinity=False, width=32),
        min_size=2,
        max_size=8,
        unique=True,
    )
    rows = []
    for sid in range(n_series):
        times = sorted(draw(times_of))
        if times[-1] - times[0] < 1e-3:  # distinct in float32 after scaling
            times = [times[0], times[0] + 1.0]
        for t in times:
            values = draw(
                st.lists(
                    st.one_of(st.none(), st.floats(-1e3, 1e3, allow_nan=False)),
                    min_size=n_features,
                    max_size=n_features,
                )
            )
            rows.append([f"s{sid}", t, *[np.nan if v is None else v for v in values]])
    frame = pd.DataFrame(rows, columns=["id", "time", *[f"f{j}" for j in range(n_features)]])
    features = frame.columns[2:]
    # every feature and every series observed at least once (else it is refused, by design)
    for j, col in enumerate(features):
        if frame[col].isna().all():
            frame.loc[frame.index[j % len(frame)], col] = 1.0
    for _, part in frame.groupby("id"):
        if part[features].isna().all().all():
            frame.loc[part.index[0], features[0]] = 0.5
    rows_order = draw(st.permutations(list(range(len(frame)))))
    return frame.iloc[rows_order].reset_index(drop=True)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=irregular_frames())
def test_fit_predict_sample_never_fail_and_stay_finite(frame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LatentODE(**TINY).fit(frame)
        pred = model.predict(frame, num_samples=4)
        draws = model.sample(2, [0.0, 1.0, 5.0], df=frame, random_state=0)
    features = list(frame.columns[2:])
    assert len(pred) == len(frame)
    assert np.isfinite(pred[features].to_numpy()).all()
    assert np.isfinite(draws[features].to_numpy()).all()
    assert set(pred["id"]) == set(frame["id"])

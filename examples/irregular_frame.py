"""From a messy long DataFrame to padded tensors and back, with missing values as a mask.

Run: python examples/irregular_frame.py
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from latentode.data import IrregularDataset


def main() -> None:
    labs = pd.DataFrame(
        {
            "patient": ["p2", "p1", "p1", "p2", "p1", "p3"],
            "taken": pd.to_datetime(
                [
                    "2024-01-02 07:40",
                    "2024-01-01 09:00",
                    "2024-01-01 21:15",
                    "2024-01-03 12:00",
                    "2024-01-02 02:30",
                    "2024-01-05 10:00",
                ]
            ),
            "glucose": [5.1, 6.3, np.nan, 7.0, 5.8, 4.9],
            "lactate": [np.nan, 1.2, 2.4, np.nan, 1.1, 0.9],
        }
    )
    data = IrregularDataset.from_frame(labs, id_col="patient", time_col="taken", time_unit="h")
    batch = data.batch()
    print(f"series: {data.ids}; time scale: 1 model unit = {data.scaler.scale_:g} h")
    print(f"values {tuple(batch.values.shape)}, observed entries {int(batch.mask.sum())}")
    grid = batch.union_grid()
    print(f"{grid.times.numel()} distinct times across the batch (a decoder solves once on them)")
    print(data.to_frame(batch).to_string(index=False))


if __name__ == "__main__":
    main()

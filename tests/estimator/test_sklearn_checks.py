"""scikit-learn's estimator checks, run for what applies to a DataFrame-of-series estimator.

The checks feed ``(n_samples, n_features)`` arrays; ``LatentODE.fit`` takes a long frame of
irregular series and refuses arrays with a TypeError that says so. Those checks are expected
failures, each with its reason; the time-series equivalents (fit returns self, seeded
repeatability, no mutation of the input, row/series-order invariance, save/load round trip,
reproducible sampling) are in test_estimator.py.
"""

from __future__ import annotations

import warnings

from sklearn.utils.estimator_checks import parametrize_with_checks

from latentode.estimator import LatentODE

_ARRAYS = "fit takes a long DataFrame of irregular series, not an (n_samples, n_features) array"
_SPARSE = "fit takes a long DataFrame; sparse matrices are refused with a TypeError"

EXPECTED_FAILURES = dict.fromkeys(
    (
        "check_complex_data",
        "check_dict_unchanged",
        "check_dont_overwrite_parameters",
        "check_dtype_object",
        "check_estimators_dtypes",
        "check_estimators_empty_data_messages",
        "check_estimators_fit_returns_self",
        "check_estimators_nan_inf",
        "check_estimators_overwrite_params",
        "check_estimators_pickle",
        "check_f_contiguous_array_estimator",
        "check_fit1d",
        "check_fit2d_1feature",
        "check_fit2d_1sample",
        "check_fit2d_predict1d",
        "check_fit_check_is_fitted",
        "check_fit_idempotent",
        "check_fit_score_takes_y",
        "check_methods_sample_order_invariance",
        "check_methods_subset_invariance",
        "check_n_features_in",
        "check_n_features_in_after_fitting",
        "check_pipeline_consistency",
        "check_positive_only_tag_during_fit",
        "check_readonly_memmap_input",
    ),
    _ARRAYS,
) | dict.fromkeys(
    ("check_estimator_sparse_array", "check_estimator_sparse_matrix", "check_estimator_sparse_tag"),
    _SPARSE,
)


@parametrize_with_checks(
    [LatentODE(max_epochs=1)], expected_failed_checks=lambda est: EXPECTED_FAILURES
)
def test_sklearn_compatible_estimator(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(estimator)

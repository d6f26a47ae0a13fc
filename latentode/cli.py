"""The ``latentode`` command.

Subcommands:

- ``latentode fit --config configs/periodic.yaml [--trainer.max_epochs=3] [--out DIR]``:
  LightningCLI over :class:`LatentODEModule` and :class:`IrregularTimeSeriesDataModule`
  (dotted overrides work), then the fitted model saved to ``--out`` for predict/sample.
- ``latentode predict --model DIR --data FILE --times ... --out FILE``: posterior mean and
  quantiles on a CSV or Parquet table; ``latentode sample --model DIR --times ... --out FILE``.
  With ``--chunk-series N``, and always for a folder of Parquet files, both read ``--data``
  and write ``--out`` N whole series at a time (:mod:`latentode.data.streaming`).
- ``latentode evaluate --model DIR --data FILE [--task extrapolation]``: the model against
  simple per-series baselines on held-out points (:func:`latentode.evaluate.compare`).

- ``latentode demo``: fit a latent ODE at its defaults to built-in irregular series (drug
  concentrations after a dose), score it against simple per-series baselines on held-out
  series, and write the metrics, the comparison, the saved model, the predictions and a PNG
  plot to an output folder. The README's main job.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

__all__ = ["main"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {value}")
    return value


def _check_model_folder(path: Path, overwrite: bool) -> None:
    """--out of fit/demo: a folder (made if missing) that holds nothing unless --overwrite."""
    if path.exists() and not path.is_dir():
        raise SystemExit(f"--out {str(path)!r} is a file; give a folder")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise SystemExit(
            f"--out {str(path)!r} is not empty; choose a new folder or pass --overwrite to "
            "replace what latentode writes there"
        )


def _output_folder(text: str) -> Path:
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a file; give a folder to write into")
    if not path.parent.exists():
        raise argparse.ArgumentTypeError(
            f"folder {str(path.parent)!r} does not exist; create it first"
        )
    return path


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="latentode",
        description="Latent-ODE models for irregularly sampled time series.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="fit a latent ODE to built-in irregular series, compare it with baselines, plot",
        description=(
            "Fit a latent ODE at its defaults to built-in drug-concentration curves sampled at "
            "irregular hours, then score it against simple per-subject baselines on held-out "
            "subjects, and against their noise-free curves from the samples before 16 h. "
            "Writes metrics.json, comparison.csv, predictions.csv, the saved model and "
            "demo.png to --out."
        ),
    )
    demo.add_argument(
        "--out",
        type=_output_folder,
        default=Path("latentode-demo"),
        help="output folder (created; default: ./latentode-demo)",
    )
    demo.add_argument(
        "--steps", type=_positive_int, default=3000, help="optimiser steps; default: 3000"
    )
    demo.add_argument(
        "--series", type=_positive_int, default=100, help="subjects (a fifth held out); default 100"
    )
    demo.add_argument("--seed", type=int, default=0, help="random seed; default 0")
    demo.add_argument("--quiet", action="store_true", help="print the final summary only")
    demo.add_argument("--overwrite", action="store_true", help="write into a non-empty --out")
    commands.add_parser(
        "fit",
        help="train with LightningCLI from YAML (latentode fit --config configs/periodic.yaml)",
        add_help=False,
    )
    _add_file_commands(commands)
    return parser


_CUT_HOURS = 16.0  # held-out subjects are observed up to here (the last samples are ~24 h)


def _demo(args: argparse.Namespace) -> int:
    import numpy as np
    import pandas as pd
    import torch

    from latentode.data import make_dataset
    from latentode.estimator import LatentODE
    from latentode.evaluate import compare, format_comparison, holdout_series

    # The demo's networks are small: extra threads only contend for the cores.
    torch.set_num_threads(1)
    out: Path = args.out
    _check_model_folder(out, args.overwrite)
    out.mkdir(exist_ok=True)
    # Drug concentrations after one dose: a fast rise and a slow decay, each subject with its
    # own rates, sampled about ten times at irregular hours, sparse around the peak.
    data = make_dataset("absorption", n_series=args.series, random_state=args.seed)
    train, test = holdout_series(data.observed, 0.2, random_state=args.seed)
    conditioning = test[test["time"] < _CUT_HOURS]
    truth = data.truth[data.truth["id"].isin(conditioning["id"].unique())]

    # The estimator's defaults, with the step budget of the command line.
    model = LatentODE(max_steps=args.steps, random_state=args.seed, verbose=not args.quiet)
    if not args.quiet:
        print(
            f"fitting a latent ODE to {train['id'].nunique()} subjects' concentration curves "
            f"({len(train)} samples at irregular hours), {args.steps} optimiser steps ..."
        )
    start = time.perf_counter()
    model.fit(train)
    fit_seconds = time.perf_counter() - start

    # Against the baselines, on samples of the held-out subjects that the model never saw.
    tables = [
        compare(model, test, "interpolation", random_state=args.seed),
        compare(model, test, "extrapolation", fraction=0.3, random_state=args.seed),
    ]
    ratios = {
        str(t["task"].iloc[0]): float(
            t.loc[(t["method"] == "latentode") & (t["feature"] == "all"), "ratio"].iloc[0]
        )
        for t in tables
    }
    # Against the noise-free curves, from each held-out subject's samples before the cut:
    # the curve's own band (interval="mean"), not the band of new observations.
    pred = model.predict(
        conditioning, times=truth[["id", "time"]], num_samples=100, interval="mean"
    )
    merged = pred.merge(truth, on=["id", "time"], suffixes=("", "_true"))
    error = merged["conc"] - merged["conc_true"]
    inside = merged["time"] < _CUT_HOURS
    covered = (merged["conc_true"] >= merged["conc_q0.05"]) & (
        merged["conc_true"] <= merged["conc_q0.95"]
    )
    metrics = {
        "train_series": int(train["id"].nunique()),
        "test_series": int(test["id"].nunique()),
        "steps": int(model.n_steps_),
        "epochs": int(model.n_epochs_),
        "best_epoch": model.best_epoch_,
        "fit_seconds": round(fit_seconds, 2),
        "interpolation_ratio_to_best_baseline": ratios["interpolation"],
        "extrapolation_ratio_to_best_baseline": ratios["extrapolation"],
        "interpolation_rmse": float(np.sqrt(np.mean(error[inside] ** 2))),
        "extrapolation_rmse": float(np.sqrt(np.mean(error[~inside] ** 2))),
        "coverage_90": float(covered.mean()),
        "test_log_likelihood_per_obs": model.score(test),
        "signal_rms": float(np.sqrt(np.mean(merged["conc_true"] ** 2))),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    pd.concat(tables, ignore_index=True).to_csv(out / "comparison.csv", index=False)
    pred.to_csv(out / "predictions.csv", index=False)
    model.save(out / "model")
    plot_note = _demo_plot(model, conditioning, truth, out / "demo.png")
    print(
        f"latent ODE fitted in {fit_seconds:.1f} s ({metrics['steps']} steps) on "
        f"{metrics['train_series']} subjects. On {metrics['test_series']} held-out subjects, "
        "against simple per-subject baselines (ratio = model MSE / best baseline MSE; below 1 "
        "the model wins):"
    )
    for table in tables:
        print(format_comparison(table))
    print(
        f"seen up to {_CUT_HOURS:g} h, against the noise-free curves: RMSE "
        f"{metrics['interpolation_rmse']:.3f} before {_CUT_HOURS:g} h, "
        f"{metrics['extrapolation_rmse']:.3f} after (signal RMS {metrics['signal_rms']:.2f}); "
        f"the curve's 90% band covers {100 * metrics['coverage_90']:.0f}% of the true curves "
        "(cover50/cover90 above: the predictive bands on new observations)"
    )
    print(f"wrote {out}/metrics.json, comparison.csv, predictions.csv, model/ and {plot_note}")
    return 0


def _demo_plot(model, conditioning, truth, path: Path) -> str:
    import numpy as np

    try:
        from latentode.plot import plot_series

        grid = np.linspace(0.0, float(truth["time"].max()), 121)
        shown = conditioning["id"].unique()[:6]
        cond = conditioning[conditioning["id"].isin(shown)]
        dense = model.predict(cond, times=grid, num_samples=100)
        fig = plot_series(
            cond,
            dense,
            truth=truth[truth["id"].isin(shown)],
            title=f"latentode demo: held-out subjects observed up to {_CUT_HOURS:g} h",
        )
    except ImportError:
        return "no plot (install matplotlib: pip install 'latentode[plot]')"
    fig.savefig(path, dpi=110)
    return f"{path.name}"


def _fit(argv: list[str]) -> int:
    """``latentode fit``: LightningCLI over the module and data module, then a saved model."""
    try:
        from pytorch_lightning.cli import LightningCLI
    except ImportError as err:  # pragma: no cover - jsonargparse missing
        raise SystemExit(
            "`latentode fit` needs jsonargparse, a dependency of latentode; reinstall it: "
            f"pip install -e . (or pip install 'jsonargparse[signatures]>=4.27') ({err})"
        ) from None

    from latentode.estimator import LatentODE
    from latentode.lightning import IrregularTimeSeriesDataModule, LatentODEModule
    from latentode.lightning.checkpointing import (
        AtomicCheckpointIO,
        FolderLock,
        checkpoint_callbacks,
        last_checkpoint,
        resume_point,
    )

    class _CLI(LightningCLI):
        def add_arguments_to_parser(self, parser) -> None:
            parser.link_arguments("data.n_features", "model.n_features", apply_on="instantiate")
            for size in ("n_held_inputs", "n_impulse_inputs", "n_static_features"):
                parser.link_arguments(f"data.{size}", f"model.{size}", apply_on="instantiate")
            parser.add_argument(
                "--out",
                type=str,
                default="latentode-model",
                help="folder to save the fitted model in (for latentode predict/sample)",
            )
            parser.add_argument(
                "--overwrite",
                type=bool,
                default=False,
                help="replace a model already saved in --out",
            )
            parser.add_argument(
                "--checkpoint_dir",
                type=Optional[str],  # noqa: UP045 - jsonargparse reads this annotation
                default=None,
                help="write last.ckpt here after every epoch (atomically), to resume from",
            )
            parser.add_argument(
                "--resume",
                type=bool,
                default=False,
                help="continue from --checkpoint_dir/last.ckpt when there is one",
            )

        def before_fit(self) -> None:  # refuse a bad --out before training, not after
            config = self.config["fit"]
            _check_model_folder(Path(config["out"]), config["overwrite"])
            folder = config["checkpoint_dir"]
            if folder is None:
                if config["resume"]:
                    raise SystemExit("--resume needs --checkpoint_dir, the folder to resume from")
                return
            folder = Path(folder)
            folder.mkdir(parents=True, exist_ok=True)
            locks.enter_context(FolderLock(folder))  # held until training ends, or fails
            last = last_checkpoint(folder)
            if last is not None and not config["resume"]:
                raise SystemExit(
                    f"--checkpoint_dir {str(folder)!r} already holds a checkpoint; pass "
                    "--resume=true to continue it, or give an empty folder"
                )
            fingerprint = _cli_fingerprint(self.model, self.datamodule)
            self.trainer.strategy.checkpoint_io = AtomicCheckpointIO()
            self.trainer.callbacks.extend(checkpoint_callbacks(folder, fingerprint))
            if config["resume"]:  # the trainer's budget may grow: Lightning's way to go on
                last = resume_point(folder, True, fingerprint, self.model)
                if last is not None:
                    self.config_init["fit"]["ckpt_path"] = str(last)

    try:
        with contextlib.ExitStack() as locks:  # the --checkpoint_dir lock, for the whole fit
            cli = _CLI(
                LatentODEModule,
                IrregularTimeSeriesDataModule,
                args=["fit", *argv],
                save_config_callback=None,  # the config goes into --out below, not the cwd
                trainer_defaults={"logger": False, "enable_checkpointing": False},
            )
    except _user_errors() as err:  # a bad data file or setting: one line, not a traceback
        raise SystemExit(f"latentode fit: {err}") from None
    out = Path(cli.config["fit"]["out"])
    model = LatentODE.from_lightning(cli.model, cli.datamodule)
    model.save(out)
    config = cli.parser.dump(cli.config, skip_none=False, skip_check=True)
    (out / "fit-config.yaml").write_text(config, encoding="utf-8")
    print(f"saved the fitted model to {out}/ (use: latentode predict --model {out} ...)")
    return 0


def _cli_fingerprint(model, dm):
    """What a ``latentode fit`` checkpoint must match to be resumed: the model's settings, those
    of the data module that shape training, and the data. The trainer's are left out, so a
    resume may raise ``--trainer.max_epochs`` and train on, as Lightning allows."""
    from latentode.lightning.checkpointing import RunFingerprint, data_fingerprint

    # which series (a file, a built-in set and its options) is the data fingerprint's job
    data_settings = (
        "task",
        "cond_fraction",
        "extrap_cut",
        "val_fraction",
        "test_fraction",
        "batch_size",
        "origin",
        "time_gaps_per_unit",
        "standardize",
        "seed",
        "input_kind",
    )
    settings = {f"model.{k}": v for k, v in model.hparams.items()}
    settings.update({f"data.{k}": getattr(dm, k) for k in data_settings})
    dm.setup()
    return RunFingerprint("latentode fit", settings, data_fingerprint(dm))


def _parse_times(given: Sequence[str] | str | None):
    """``--times`` → what the estimator takes; None stays None.

    Items are comma- or space-separated. Plain numbers stay numbers (a float list): the model
    reads them in its own time unit. ISO-8601 dates or date-times (``2024-01-31``,
    ``2024-01-31T08:30``) become Timestamps and durations (``1 days 02:00:00``, ``90min``)
    Timedeltas, by the rule the data files follow (:func:`latentode.data.read_table`).
    """
    import pandas as pd

    from latentode.data.files import parse_time_text

    if given is None:
        return None
    given = [given] if isinstance(given, str) else list(given)
    text = " ".join(given)
    parts = [p.strip() for item in given for p in item.split(",") if p.strip()]
    if not parts:
        raise SystemExit("--times is empty; give comma-separated times, e.g. --times 0,1,2.5")
    if all(_is_number(p) for p in parts):
        return [float(p) for p in parts]
    try:
        parsed = parse_time_text(
            pd.Series(parts, dtype=object), "--times", where=lambda i: f"item {i + 1}"
        )
    except ValueError as err:
        raise SystemExit(
            f"--times must be comma-separated numbers (in the model's time unit), dates or "
            f"durations, all of one form; got {text!r}: {err}"
        ) from None
    if pd.api.types.is_datetime64_any_dtype(parsed):
        return pd.DatetimeIndex(parsed)
    return pd.TimedeltaIndex(parsed)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _user_errors() -> tuple[type[Exception], ...]:
    """What a command reports as one line, not a traceback: bad files and values, and an ODE
    solve that cannot finish (its message names the fixes)."""
    from latentode.core.solver import SolverError

    return (FileNotFoundError, FileExistsError, ValueError, TypeError, ImportError, SolverError)


def _load_model(folder: str):
    from latentode.estimator import LatentODE

    try:
        return LatentODE.load(folder)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"--model: {err}") from None


def _read_data(model, path: str):
    """``--data`` in the model's layout: ids as text (verbatim), text times parsed as the
    model's kind of time (dates required for a model fitted on dates)."""
    from latentode.data import read_table

    fmt = model.format_
    return read_table(
        path,
        id_col=fmt.id_col,
        time_col=fmt.time_col,
        parse_dates=True if fmt.time_kind == "datetime" else None,
    )


def _predict(args: argparse.Namespace) -> int:
    from latentode.data import write_table
    from latentode.data.files import check_output_path

    try:  # refuse a bad --out before any work
        check_output_path(args.out, overwrite=args.overwrite)
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        raise SystemExit(f"latentode predict: --out: {err}") from None
    model = _load_model(args.model)
    times = _parse_times(args.times)
    inputs, static = _covariate_frames(model, args)

    def predict(df):
        return model.predict(
            df,
            inputs=_for_series(inputs, df, model.format_.id_col),
            static=_for_series(static, df, model.format_.id_col),
            times=times,
            horizon=args.horizon,
            horizon_points=args.horizon_points,
            quantiles=args.quantiles,
            num_samples=args.num_samples,
            interval=args.interval,
        )

    try:
        if _streams(args):
            rows, note = _stream("predict", model, args, predict)
        else:
            pred = predict(_read_data(model, args.data))
            write_table(pred, args.out, overwrite=args.overwrite)
            rows, note = len(pred), ""
    except _user_errors() as err:
        raise SystemExit(f"latentode predict: {err}") from None
    print(f"wrote {rows} rows{note} to {args.out}")
    return 0


def _sample(args: argparse.Namespace) -> int:
    from latentode.data import write_table
    from latentode.data.files import check_output_path

    try:
        check_output_path(args.out, overwrite=args.overwrite)
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        raise SystemExit(f"latentode sample: --out: {err}") from None
    if args.data is None and args.chunk_series is not None:
        raise SystemExit("latentode sample: --chunk-series reads --data in chunks; give --data")
    model = _load_model(args.model)
    times = _parse_times(args.times)
    inputs, static = _covariate_frames(model, args)

    def sample(df):
        return model.sample(
            args.n_samples,
            times,
            df=df,
            random_state=args.seed,
            noise=not args.no_noise,
            inputs=_for_series(inputs, df, model.format_.id_col),
            static=_for_series(static, df, model.format_.id_col),
        )

    try:
        if args.data is not None and _streams(args):
            rows, note = _stream("sample", model, args, sample, keys=("sample",))
        else:
            samples = sample(None if args.data is None else _read_data(model, args.data))
            write_table(samples, args.out, overwrite=args.overwrite)
            rows, note = len(samples), ""
    except _user_errors() as err:
        raise SystemExit(f"latentode sample: {err}") from None
    print(f"wrote {rows} rows ({args.n_samples} samples{note}) to {args.out}")
    return 0


_CHUNK_SERIES = 1000  # series per chunk when --data is a Parquet folder and no --chunk-series


def _streams(args: argparse.Namespace) -> bool:
    """Whether --data is read a chunk of whole series at a time: with --chunk-series, and
    always for a folder (a Parquet dataset, which has no one-piece reader)."""
    return args.chunk_series is not None or Path(args.data).is_dir()


def _stream(command: str, model, args: argparse.Namespace, compute, keys=()) -> tuple[int, str]:
    """``compute`` on each chunk of whole series of ``--data``, appended to ``--out``.

    Memory holds one chunk, its results and the ids read so far. Each chunk's rows come out
    with its series in the order they appear in the file (then by ``keys`` first: ``sample``),
    so the whole output follows the file's order. A progress line per chunk goes to stderr
    unless --quiet. Returns the rows written and a note for the summary line.
    """
    from latentode.data.streaming import TableWriter, iter_series_chunks

    fmt = model.format_
    chunks = iter_series_chunks(
        args.data,
        id_col=fmt.id_col,
        time_col=fmt.time_col,
        n_series=args.chunk_series or _CHUNK_SERIES,
        columns=[fmt.id_col, fmt.time_col, *fmt.value_cols],
        parse_dates=True if fmt.time_kind == "datetime" else None,
    )
    start = time.perf_counter()
    n_series = n_chunks = 0
    with TableWriter(args.out, overwrite=args.overwrite) as out:
        for chunk in chunks:
            ids = chunk.frame[fmt.id_col]
            try:
                result = compute(chunk.frame)
            except _user_errors() as err:  # where in the file, then what
                raise SystemExit(f"latentode {command}: in {chunk.span}: {err}") from None
            out.write(_in_file_order(result, ids, fmt.id_col, keys))
            n_chunks, n_series = chunk.number, chunk.series_before + ids.nunique()
            if not args.quiet:
                print(
                    f"latentode {command}: chunk {chunk.number}: {len(chunk.frame):,} rows of "
                    f"{n_series - chunk.series_before:,} series ({chunk.span}) -> "
                    f"{len(result):,} rows; {n_series:,} series in "
                    f"{time.perf_counter() - start:.1f} s",
                    file=sys.stderr,
                    flush=True,
                )
    plural = "s" if n_chunks > 1 else ""
    return out.rows, f", {n_series} series in {n_chunks} chunk{plural}"


def _in_file_order(result, ids, id_col: str, keys: Sequence[str]):
    """``result`` with its series in their order in ``ids`` (first appearance), after
    ``keys``; rows of one series keep their order."""
    import numpy as np
    import pandas as pd

    position = pd.Index(pd.unique(ids)).get_indexer(result[id_col])  # (rows,)
    order = np.lexsort(
        (np.arange(len(result)), position, *[result[k].to_numpy() for k in reversed(keys)])
    )
    return result.iloc[order].reset_index(drop=True)


def _quantile_list(text: str) -> list[float]:
    try:
        return [float(q) for q in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated levels in (0, 1), e.g. 0.05,0.5,0.95; got {text!r}"
        ) from None


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number; got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number; got {text!r}")
    return value


def _evaluate(args: argparse.Namespace) -> int:
    from latentode.data import write_table
    from latentode.data.files import check_output_path
    from latentode.evaluate import compare, format_comparison

    if args.out is not None:
        try:
            check_output_path(args.out, overwrite=args.overwrite)
        except (FileNotFoundError, FileExistsError, ValueError) as err:
            raise SystemExit(f"latentode evaluate: --out: {err}") from None
    if args.task == "interpolation" and args.n_last is not None:
        raise SystemExit(
            "latentode evaluate: --n-last is for --task extrapolation; use --fraction to size "
            "the interior points held out"
        )
    if args.fraction is not None and args.n_last is not None:
        raise SystemExit("latentode evaluate: give --fraction or --n-last, not both")
    model = _load_model(args.model)
    try:
        df = _read_data(model, args.data)
        table = compare(
            model,
            df,
            args.task,
            fraction=args.fraction,
            n_last=args.n_last,
            num_samples=args.num_samples,
            random_state=args.seed,
        )
        if args.out is not None:
            write_table(table, args.out, overwrite=args.overwrite)
    except _user_errors() as err:
        raise SystemExit(f"latentode evaluate: {err}") from None
    print(format_comparison(table))
    if args.out is not None:
        print(f"wrote {len(table)} rows to {args.out}")
    return 0


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1); got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1); got {text!r}")
    return value


def _add_file_commands(commands) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help="score a saved model against simple baselines on held-out points of a table",
        description=(
            "Hide points of each series in --data (interior points for interpolation, the "
            "last points for extrapolation), predict them from the rest with the model and "
            "with per-series baselines (linear interpolation, LOCF, a linear trend, the "
            "population mean curve), and print one table with the ratios. Give series the "
            "model was not fitted on."
        ),
    )
    evaluate.add_argument("--model", required=True, help="folder written by fit or save()")
    evaluate.add_argument("--data", required=True, help="long table (.csv or .parquet)")
    evaluate.add_argument(
        "--task", choices=("interpolation", "extrapolation"), default="interpolation"
    )
    evaluate.add_argument(
        "--fraction",
        type=_fraction,
        help="interpolation: share of interior points hidden (default 0.25); extrapolation: "
        "hide the last share of each series' span",
    )
    evaluate.add_argument(
        "--n-last",
        type=_positive_int,
        help="extrapolation: hide each series' last N points (default 2)",
    )
    evaluate.add_argument("--num-samples", type=_positive_int, default=100, help="default 100")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the split; default 0")
    evaluate.add_argument("--out", help="also write the full table (.csv or .parquet)")
    evaluate.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    predict = commands.add_parser(
        "predict",
        help="predict a saved model's mean and quantiles on a CSV/Parquet file",
        description="Condition on the series in --data and predict at --times or --horizon.",
    )
    predict.add_argument("--model", required=True, help="folder written by fit or save()")
    predict.add_argument(
        "--data",
        required=True,
        help="long table (.csv or .parquet), or a folder of .parquet files (read in chunks)",
    )
    predict.add_argument(
        "--times",
        nargs="+",
        help="times, comma- or space-separated: numbers (in the model's time unit), ISO-8601 "
        "dates or durations; default each series' own",
    )
    predict.add_argument("--horizon", type=_positive_float, help="forecast this far past the end")
    predict.add_argument(
        "--horizon-points",
        type=_positive_int,
        default=20,
        help="times per series with --horizon; default 20",
    )
    predict.add_argument(
        "--quantiles", type=_quantile_list, default=[0.05, 0.5, 0.95], help="default 0.05,0.5,0.95"
    )
    predict.add_argument("--num-samples", type=_positive_int, default=100, help="default 100")
    predict.add_argument(
        "--interval",
        choices=("predictive", "mean"),
        default="predictive",
        help="quantiles of a new observation (default) or of the noise-free curve",
    )
    predict.add_argument("--out", required=True, help="output table (.csv or .parquet)")
    predict.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    _add_covariates(predict)
    _add_streaming(predict)
    sample = commands.add_parser(
        "sample",
        help="draw new series (or posterior paths given --data) from a saved model",
        description="Without --data: new series from the prior at --times since their start.",
    )
    sample.add_argument("--model", required=True, help="folder written by fit or save()")
    sample.add_argument(
        "--times",
        nargs="+",
        required=True,
        help="times, comma- or space-separated: numbers (in the model's time unit), ISO-8601 "
        "dates or durations",
    )
    sample.add_argument("--n-samples", type=_positive_int, default=10, help="default 10")
    sample.add_argument(
        "--data",
        help="condition on these series (.csv or .parquet, or a folder of .parquet files)",
    )
    sample.add_argument("--seed", type=int, default=0, help="default 0")
    sample.add_argument(
        "--no-noise",
        action="store_true",
        help="draw the noise-free curves instead of new observations",
    )
    sample.add_argument("--out", required=True, help="output table (.csv or .parquet)")
    sample.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    _add_covariates(sample)
    _add_streaming(sample)


def _add_covariates(command) -> None:
    command.add_argument(
        "--inputs",
        help="known inputs of the series in --data (.csv or .parquet: id, time and the "
        "model's input columns), for a model fitted with them; another schedule asks what if",
    )
    command.add_argument(
        "--static",
        help="static features of the series in --data (.csv or .parquet: id and the model's "
        "static columns, one row per series)",
    )


def _covariate_frames(model, args: argparse.Namespace):
    """``--inputs`` and ``--static`` read in the model's layout (ids as text), or None."""
    from latentode.data import read_table

    fmt = model.format_
    out = []
    for flag, path in (("--inputs", args.inputs), ("--static", args.static)):
        if path is None:
            out.append(None)
            continue
        try:
            out.append(
                read_table(
                    path,
                    id_col=fmt.id_col,
                    time_col=fmt.time_col if flag == "--inputs" else None,
                    parse_dates=True if fmt.time_kind == "datetime" else None,
                )
            )
        except _user_errors() as err:
            raise SystemExit(f"{flag}: {err}") from None
    return tuple(out)


def _for_series(frame, df, id_col: str):
    """The rows of ``frame`` (None stays None) for the series of ``df`` (one chunk, or all).

    A ``df`` without the id column is left for the estimator to refuse with its own message.
    """
    if frame is None or df is None or id_col not in df.columns or id_col not in frame.columns:
        return frame
    return frame[frame[id_col].isin(set(df[id_col]))]


def _add_streaming(command) -> None:
    command.add_argument(
        "--chunk-series",
        type=_positive_int,
        metavar="N",
        help="read --data and write --out N whole series at a time, in bounded memory; the "
        "rows of each series must be contiguous (default for a folder: "
        f"{_CHUNK_SERIES}; a file is read whole without it)",
    )
    command.add_argument(
        "--quiet", action="store_true", help="no progress line per chunk on stderr"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``latentode`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["fit"]:
        return _fit(argv[1:])
    parser = _build_parser()
    args = parser.parse_args(argv)
    handlers = {"demo": _demo, "predict": _predict, "sample": _sample, "evaluate": _evaluate}
    return handlers[args.command](args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

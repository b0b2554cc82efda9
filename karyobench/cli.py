"""Command line: parse, call, print. No logic lives here."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn,
                           TextColumn, TimeElapsedColumn, TimeRemainingColumn)
from rich.table import Table
from rich.text import Text

from karyobench.errors import KaryobenchError
from karyobench.results_schema import FOLDS, LOCKBOX_DIR, OPENINGS, SEED_COLUMN

app = typer.Typer(
    help="karyobench: honest, cross-validated benchmarking of chromosome classifiers.\n\n"
         "A study YAML names the data, tasks, estimators and CV protocol; `run` trains "
         "every estimator x fold and writes tables, predictions and a report.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
console = Console(stderr=True)
_DEBUG = {"on": False}


@app.callback()
def _options(debug: bool = typer.Option(False, "--debug", help="show tracebacks")):
    _DEBUG["on"] = debug


class _RunningFolds(ProgressColumn):
    """The folds training now and their epochs (``karyobench.progress``), read afresh at
    every refresh of the bar: a Keras fold of several minutes shows how far it is."""

    def __init__(self):
        super().__init__()
        self.folder = None

    def render(self, task) -> Text:
        from karyobench import progress

        lines = progress.running(self.folder)
        return Text("running: " + "; ".join(lines) if lines else "", style="dim")


class _FoldProgress:
    """Rich progress bar over estimator x fold jobs, with a transient status line for the
    stages before and after them (decoding images, writing the report).

    The time left is estimated from every fold finished in this run (reused folds take
    no time and do not count); the label names the fold that finished last.
    """

    def __init__(self):
        self.started = False
        self.status = None
        self.running = _RunningFolds()
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                            self.running, console=console, transient=False,
                            speed_estimate_period=365 * 24 * 3600.0)

    def stage(self, text: str):
        """Say what the run is doing until the next stage or the fold bar (transient)."""
        self._stop_status()
        self._stop_bar()
        self.status = console.status(escape(text))
        self.status.start()

    def start(self, total: int, reused: int, running: Path | None = None):
        """``running``: the folder where running folds report their epochs."""
        self.running.folder = running
        self._stop_status()
        self.bar.start()
        self.started = True
        self.task = self.bar.add_task("folds", total=total, completed=reused)
        if reused:
            console.print(f"reusing {reused} finished fold(s) from an earlier run")

    def advance(self, result):
        job = result.job
        self.bar.update(self.task, advance=1, description=f"finished {job.task} · "
                        f"{job.estimator} · fold {job.fold}")

    def stop(self):
        self._stop_status()
        self._stop_bar()

    def _stop_bar(self):
        if self.started:  # stopping a bar never shown prints an empty line
            self.bar.stop()
            self.started = False

    def _stop_status(self):
        if self.status is not None:
            self.status.stop()
            self.status = None


@app.command()
def run(
    study: Path = typer.Argument(..., help="study YAML file"),
    out: Optional[Path] = typer.Option(None, "--out", help="results folder "
                                       "(default: results/<study name>)"),
    backend: Optional[str] = typer.Option(None, help="auto | sequential | loky | dask "
                                          "(default: the study's execution, else auto: "
                                          "every core)"),
    workers: Optional[int] = typer.Option(None, help="parallel fold jobs"),
    scheduler: Optional[str] = typer.Option(None, help="dask scheduler tcp://host:port"),
    cache_dir: Optional[Path] = typer.Option(None, help="decoded-image cache "
                                             "(default ~/.cache/karyobench)"),
    reuse: list[Path] = typer.Option([], "--reuse", help="a results folder (this study's "
                                     "own, or another's) whose committed folds are reused "
                                     "instead of retrained (same job key only); repeatable"),
    lockboxes: Path = typer.Option(Path("lockboxes"), "--lockboxes",
                                   help="folder of lockbox records (one per dataset): a "
                                   "study on data with a lockbox must declare it"),
    force: bool = typer.Option(False, "--force", help="write into a --out folder that "
                               "holds another study's results (its tables are replaced)"),
):
    """Run every estimator x fold of a study and write its results folder.

    Writes folds.parquet (metrics per fold), predictions.parquet (every out-of-fold
    prediction), summary/per-class/pair tables (md, csv, tex), plots and report.html, plus
    the resolved config, protocol and environment. Finished folds are cached: re-running
    the same command resumes an interrupted run and recomputes nothing that is done. With
    --reuse DIR, folds missing from jobs/ (a fresh clone has none) are recovered from the
    committed predictions in DIR when their job key matches.

    Example: karyobench run studies/abnormal_pairs.yaml
    """
    from karyobench.evaluation.runner import run_study
    from karyobench.study import load_study

    config = load_study(study)
    if backend is not None and backend not in ("auto", "sequential", "loky", "dask"):
        raise KaryobenchError(f"--backend '{backend}' is unknown; use auto, sequential, loky "
                              "or dask.")
    out_dir = out or Path("results") / config.name
    tuner = None
    if any(e.tuning for e in config.estimators):  # nested CV, searched in this run
        from karyobench.tuning.tuner import NestedSearch

        tuner = NestedSearch()
    progress = _FoldProgress()
    with contextlib.ExitStack() as cleanup:
        cache = _cache_for_run(cache_dir, cleanup)
        try:
            summary = run_study(config, out_dir, backend=backend, workers=workers,
                                scheduler=scheduler, cache_dir=cache, progress=progress,
                                tuner=tuner, reuse=reuse, lockbox_registry=lockboxes,
                                force=force)
        finally:
            progress.stop()
    _print_summary(summary)


def _cache_for_run(cache_dir: Optional[Path], cleanup: contextlib.ExitStack) -> Path:
    """The cache folder, or (default folder not writable) a temporary one, with a warning."""
    import tempfile

    from karyobench.data.loading import default_cache_dir, writable_cache_dir

    cache = writable_cache_dir(cache_dir)
    if cache is None:
        cache = Path(cleanup.enter_context(tempfile.TemporaryDirectory(
            prefix="karyobench-cache-")))
        console.print(f"warning: cache folder '{escape(str(default_cache_dir()))}' is not "
                      "writable; decoded images are cached for this run only (pass "
                      "--cache-dir to keep them)", highlight=False, soft_wrap=True)
    return cache


def _print_summary(summary):
    folds = summary.folds
    for kind, sentence in summary.protocols.items():
        console.print(f"[bold]protocol[/] ({kind}): {sentence}")
        table = Table("task", "estimator", "accuracy", "macro-F1", "fit s/fold")
        part = folds[folds["split"] == kind]
        if SEED_COLUMN in part:  # each fold averaged over its training seeds first
            part = part.groupby(["task", "estimator", "repeat", "fold"], sort=False)[
                ["accuracy", "macro_f1", "fit_seconds"]].mean().reset_index()
        for (task, estimator), rows in part.groupby(["task", "estimator"], sort=False):
            table.add_row(task, estimator,
                          f"{rows.accuracy.mean():.3f} ± {rows.accuracy.std(ddof=1):.3f}",
                          f"{rows.macro_f1.mean():.3f}", f"{rows.fit_seconds.mean():.1f}")
        console.print(table)
    console.print("leakage check: every model was fitted on training images only ✓")
    if summary.leakage_checked:
        console.print("leakage check: no group in both train and test of any fold ✓")
    for folder, count in (summary.restored or {}).items():
        console.print(f"recovered {count} finished fold(s) from the committed results in "
                      f"{folder}")
    from karyobench.report.results import unused_in_folder

    unused = unused_in_folder(summary.out_dir)
    if unused:
        console.print(escape(unused), highlight=False, soft_wrap=True)
    console.print(f"{summary.n_jobs} folds ({summary.n_reused} reused) in "
                  f"{summary.wall_seconds:.1f} s → {summary.out_dir}")


@app.command("lockbox")
def open_lockbox_command(
    study: Path = typer.Argument(..., help="study YAML file with dataset.lockbox and primary"),
    out: Optional[Path] = typer.Option(None, "--out", help="results folder "
                                       "(default: results/<study name>)"),
    reopen: bool = typer.Option(False, "--reopen", help="open an opened lockbox again "
                                "(the report then states how often it was opened)"),
    cache_dir: Optional[Path] = typer.Option(None, help="decoded-image cache"),
    lockboxes: Path = typer.Option(Path("lockboxes"), "--lockboxes",
                                   help="folder of lockbox records"),
):
    """Train the declared primary on all non-lockbox data and score the lockbox, once.

    Writes <results>/lockbox/predictions.parquet and appends the opening (UTC time,
    commit, model, accuracy with a group-bootstrap CI) to lockbox/openings.json. A second
    opening is refused unless --reopen.
    """
    from karyobench.report.openings import describe_opening
    from karyobench.evaluation.lockbox_opening import open_lockbox
    from karyobench.study import load_study

    config = load_study(study)
    out_dir = out or Path("results") / config.name
    openings = open_lockbox(config, out_dir, registry=lockboxes, cache_dir=cache_dir,
                            reopen=reopen)
    console.print(f"lockbox of {config.name}: {escape(describe_opening(openings[-1]))}; "
                  f"opening {len(openings)} recorded in "
                  f"{out_dir / LOCKBOX_DIR / OPENINGS}", highlight=False)
    if (out_dir / FOLDS).is_file():
        from karyobench.report import write_report

        write_report(out_dir)


@app.command()
def report(results_dir: Path = typer.Argument(..., help="a finished results folder")):
    """Regenerate tables, plots and report.html from saved predictions (no retraining)."""
    from karyobench.report import write_report

    written = write_report(results_dir)
    console.print(f"wrote {len(written)} files under {results_dir}")


@app.command()
def compare(dir_a: Path, dir_b: Path,
            out: Path = typer.Option(Path("comparison"), "--out", help="output folder")):
    """Put two results folders side by side."""
    from karyobench.report import compare as compare_runs

    path = compare_runs(dir_a, dir_b, out)
    console.print(f"wrote {path}")


@app.command()
def estimators():
    """List the estimator kinds a study can use."""
    from karyobench.estimators import available

    for name, description in available().items():
        typer.echo(f"{name:20s} {description}")


def _register_synth():
    try:
        from karyobench.synth.command import synth_command
    except ImportError:
        return
    app.command("synth", help="Write a synthetic G-banded dataset (and a karyogram preview).")(
        synth_command)


_register_synth()


def _register_tune():
    try:
        from karyobench.tuning.command import tune_command
    except ImportError:
        return
    app.command("tune", help="Nested-CV Optuna tuning of the study's estimators[].tuning "
                "blocks; --storage URL and --workers K share one Optuna study.")(tune_command)


_register_tune()


# typer >= 0.2x raises its bundled copy of click's exceptions (typer._click), older typer
# the click package's; typer.BadParameter descends from whichever is in use, in every version.
_USAGE_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
_CLICK_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
INTERRUPTED = "interrupted; finished folds are kept, re-run to resume"
EXIT_SIGINT, EXIT_SIGTERM = 130, 143


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so ``finally`` blocks (the results-folder lock,
    the progress bar) run; a BaseException so no ``except Exception`` swallows it."""


def _raise_terminated(signum, frame):
    raise Terminated()


#: Ctrl-C or SIGTERM exceptions Python swallowed: one raised while a destructor runs is
#: handed to ``sys.unraisablehook`` (by default a printed traceback) and the command goes
#: on; ``main`` raises it again once the command returns
_SWALLOWED_INTERRUPTS: list[BaseException] = []


def _keep_swallowed_interrupts(unraisable) -> None:
    if isinstance(unraisable.exc_value, (Terminated, KeyboardInterrupt)):
        _SWALLOWED_INTERRUPTS.append(unraisable.exc_value)
    else:
        sys.__unraisablehook__(unraisable)


def _usage_line(err) -> str:
    """One line for a command-line usage error, pointing at the command's --help."""
    ctx = getattr(err, "ctx", None)
    message = " ".join(err.format_message().split()).rstrip(".")
    if ctx is None:
        return f"{message}."
    see = f"ee '{ctx.command_path} --help'."
    return f"{message} S{see}" if message.endswith("?") else f"{message}; s{see}"


def _error(message: str, code: int) -> None:
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(code)


def main() -> None:
    """Entry point: every user error is one ``error:`` line and exit code 2; Ctrl-C exits
    130 and SIGTERM 143, each saying that finished folds are kept."""
    import signal

    signal.signal(signal.SIGTERM, _raise_terminated)
    sys.unraisablehook = _keep_swallowed_interrupts
    try:
        code = app(standalone_mode=False, prog_name="karyobench")
        if _SWALLOWED_INTERRUPTS:  # interrupted, though the exception never reached here
            raise _SWALLOWED_INTERRUPTS[0]
    except KaryobenchError as err:
        if _DEBUG["on"]:
            raise
        _error(str(err), 2)
    except _USAGE_ERROR as err:
        if type(err).__name__ == "NoArgsIsHelpError":  # the help was just printed
            sys.exit(2)
        _error(_usage_line(err), 2)
    except _CLICK_ERROR as err:
        _error(" ".join(err.format_message().split()), err.exit_code)
    except (KeyboardInterrupt, typer.Abort):  # older typer turns Ctrl-C into Abort
        _error(INTERRUPTED, EXIT_SIGINT)
    except Terminated:
        _error(INTERRUPTED, EXIT_SIGTERM)
    if code == EXIT_SIGINT:  # typer turns Ctrl-C into exit code 130 without a word
        _error(INTERRUPTED, EXIT_SIGINT)
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":
    main()

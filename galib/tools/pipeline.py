"""Run the notebooks 01→06 headlessly with papermill and summarise them in ``RESULTS.md``.

    python -m galib.tools.pipeline --profile quick [--dataset mnist] [--fig-dir figures] [--run-root runs]
    galib-figures --profile quick                       # the same, as a console script

First the sweep trains, outside the kernels, every run the selected notebooks open
(:mod:`galib.tools.sweep`, local workers); the notebooks then run with ``GALIB_EXPECT_TRAINED=1``
and only load, evaluate and draw (``--no-sweep``: they train what they miss themselves).
Figures go to ``figures/`` for the quick profile (the committed one) and to
``runs/<profile>/figures/`` for the others (:func:`~galib.tools.profiles.default_fig_dir`).

A profile (``notebooks/params/<profile>.json``, :mod:`galib.tools.profiles`) holds ``common``
parameters and per-notebook overrides under ``notebooks``; ``notebooks/params/<profile>/<stem>.yaml`` hold the same parameters
flattened per notebook for ``papermill -f`` (:func:`write_flat_params` writes them, a test keeps
them in sync). The pipeline adds ``fig_dir``, ``run_dir`` and ``interactive=False``:
02, 04 and 05 share one training run (``<run-root>/<profile>/<dataset>/ald``), 03 trains under
``.../tau_sweep/tau_<τ>`` and 05's other baselines next to it (``.../ae``, ``.../manual``). Executed notebooks go to
``<run-root>/<profile>/executed/`` and, with paths made relative, to ``<fig-dir>/notebooks/`` (so
they render with their figures on the web); each notebook writes ``<fig-dir>/<stem>/metrics.json``
and its PNGs, and at the end ``<fig-dir>/RESULTS.md`` tabulates every ``summary`` block with the
dataset, profile and git commit. While a notebook runs, its ``[galib]`` and epoch lines are streamed
(and, on a terminal, papermill's cell progress bar). A failing cell stops the run, naming the
notebook and the cell.

It runs the notebooks of a source checkout (``notebooks/`` beside ``galib/``), found as
:func:`galib.paths.home`: ``$GALIB_HOME``, else the checkout this package was imported
from, else the current directory.
"""
from __future__ import annotations

import ast
import datetime as dt
import json
import os
import re
import shlex
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..evaluation.tables import markdown_table
from ..experiments.plan import expecting_trained
from ..io import write_text
from ..paths import COMMAND_ENV, source_commit
from ..train.cli import ShortUsageParser
from .profiles import (NOTEBOOK_DIR, NOTEBOOKS, PARAMS_DIR, PUBLISH_DIR, ROOT,  # noqa: F401
                       PipelineError, default_fig_dir, flat_parameters, load_profile, need_checkout,
                       notebook_parameters, select_notebooks)

KERNEL = "galib"


def flat_params_path(profile: str, stem: str) -> Path:
    return PARAMS_DIR / profile / f"{stem}.yaml"


def flat_params_text(profile: dict, stem: str) -> str:
    """The YAML text of :func:`flat_parameters` with a header saying where it comes from."""
    import yaml
    body = yaml.safe_dump(flat_parameters(profile, stem), sort_keys=False, default_flow_style=None,
                          allow_unicode=True)
    return (f"# Profile {profile['name']!r} for {stem}, for papermill's -f; generated from "
            f"../{profile['name']}.json by\n# `python -m galib.tools.pipeline --write-params` "
            f"(tests/test_notebooks.py checks they agree). Do not edit.\n{body}")


def write_flat_params(profiles=None) -> list[Path]:
    """Write ``notebooks/params/<profile>/<stem>.yaml`` for every profile and notebook."""
    need_checkout()
    written = []
    for name in profiles or sorted(p.stem for p in PARAMS_DIR.glob("*.json")):
        prof = load_profile(name)
        for stem in NOTEBOOKS:
            written.append(write_text(flat_params_path(prof["name"], stem), flat_params_text(prof, stem)))
    return written


def check_parameters(nb_path: Path, params: dict) -> None:
    """Every injected name must exist in the notebook's ``parameters`` cell (catches typos)."""
    import papermill as pm
    declared = pm.inspect_notebook(str(nb_path))
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise PipelineError(f"{nb_path.name}: profile sets {unknown}, which its parameters cell "
                            f"does not declare (declared: {sorted(declared)})")


def _describe_failure(nb: Path, out: Path, err: Exception) -> str:
    cell = getattr(err, "cell_index", None)
    source = (getattr(err, "source", "") or "").strip().splitlines()
    head = "\n".join("    " + line for line in source[:6])
    ename, evalue = getattr(err, "ename", type(err).__name__), getattr(err, "evalue", str(err))
    where = (f"cell {cell} of the executed copy (counting from 0, papermill's injected-parameters "
             f"cell included)" if cell is not None else "(no cell: kernel or papermill error)")
    return (f"notebook {nb} failed in {where}\n{head}\n{ename}: {evalue}\n"
            f"executed copy with the traceback: {out}")


STREAM = re.compile(r"^\s*(\[galib\]|epoch\s+\d+/\d+)")   # kernel lines worth a log line


class LineStream:
    """A file-like sink for the kernel's stdout: prints the complete lines that match ``STREAM``
    (prefixed with the notebook), through ``tqdm.write`` so a progress bar stays intact."""

    def __init__(self, label: str, pattern: re.Pattern = STREAM, echo=None):
        self.label, self.pattern, self.buffer = label, pattern, ""
        self.echo = echo or _tqdm_write

    def write(self, text: str) -> int:
        self.buffer += text
        *lines, self.buffer = self.buffer.split("\n")
        for line in lines:
            line = line.rstrip("\r").split("\r")[-1]          # tqdm redraws: keep the last state
            if self.pattern.search(line):
                self.echo(f"  [{self.label}] {line.strip()}")
        return len(text)

    def flush(self) -> None:
        pass


def _tqdm_write(line: str) -> None:
    from tqdm import tqdm
    tqdm.write(line, file=sys.stdout)
    sys.stdout.flush()


def run_notebook(stem: str, params: dict, out_dir: Path, kernel: str = KERNEL,
                 log_output: bool = False, progress: bool | None = None) -> float:
    """Execute one notebook; returns wall seconds, raises :class:`PipelineError` on failure.

    Unless ``log_output`` (all output, through papermill's logger), the kernel's ``[galib]`` and
    epoch lines are streamed; ``progress`` (default: on a terminal) shows papermill's cell bar."""
    import papermill as pm
    from .kernels import engine_kwargs     # CurveZMQ keys: no "running over TCP without encryption"
    nb = NOTEBOOK_DIR / f"{stem}.ipynb"
    out = out_dir / f"{stem}.ipynb"
    out_dir.mkdir(parents=True, exist_ok=True)
    check_parameters(nb, params)
    if progress is None:
        progress = sys.stderr.isatty()
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(str(nb), str(out), parameters=params, kernel_name=kernel,
                            cwd=str(NOTEBOOK_DIR), progress_bar=progress, log_output=log_output,
                            stdout_file=None if log_output else LineStream(stem),
                            **engine_kwargs())
    except pm.PapermillExecutionError as err:
        raise PipelineError(_describe_failure(nb, out, err)) from None
    except Exception as err:                                   # dead kernel, missing kernel …
        hint = (f" (is the Jupyter kernel {kernel!r} installed? run `make setup`)"
                if "kernel" in str(err).lower() else "")
        raise PipelineError(_describe_failure(nb, out, err) + hint) from None
    return time.perf_counter() - t0


def publish_notebook(executed: Path, dest: Path, root: Path | None = None) -> Path:
    """Copy an executed notebook, outputs included, to ``dest`` with every ``<root>/`` in its text
    (sources, text outputs, metadata; not images) made relative, so it reads the same anywhere."""
    root = str(root or ROOT)

    def rel(obj, key=None):
        if isinstance(obj, dict):
            return {k: rel(v, k) for k, v in obj.items()}
        if isinstance(obj, list):
            return [rel(v, key) for v in obj]
        if isinstance(obj, str) and not (key or "").startswith("image/"):
            return obj.replace(root + os.sep, "").replace(root, ".")
        return obj
    nb = rel(json.loads(Path(executed).read_text()))
    return write_text(Path(dest), json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


# ----------------------------------------------------------------------------- RESULTS.md
def git_commit() -> str:
    """Short commit hash, with ``-dirty`` when tracked code has changes (``figures/`` left out: the
    pipeline rewrites it while it runs); ``unknown`` outside git."""
    return source_commit()


def write_results(fig_dir: Path, profile: str, seconds: dict[str, float], commit: str) -> Path:
    """``RESULTS.md``: one table of every notebook's ``summary`` scalars, plus timings.

    Notebooks not run now (``--only``) keep the metrics an earlier run left in ``fig_dir``.
    """
    rows, datasets, tables = [], set(), []
    for stem in NOTEBOOKS:
        path = fig_dir / stem / "metrics.json"
        if not path.is_file():
            continue
        m = json.loads(path.read_text())
        if m.get("dataset"):
            datasets.add(str(m["dataset"]))
        for k, v in m.get("summary", {}).items():
            rows.append({"notebook": stem, "metric": k, "value": v})
        if m.get("table_md"):
            tables.append(f"### {stem}\n\n{m['table_md'].strip()}\n")
    when = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    lines = ["# Results", "",
             f"Generated by `python -m galib.tools.pipeline --profile {profile}` on {when}: profile "
             f"**{profile}**, dataset **{', '.join(sorted(datasets)) or '?'}**, git commit "
             f"`{commit}`. Every number comes from `figures/<notebook>/metrics.json`.", "",
             markdown_table(rows, [("notebook", "notebook"), ("metric", "metric"), ("value", "value")]),
             *tables,
             "## Wall time", "", "| notebook | seconds |", "| --- | --- |",
             *[f"| {s} | {seconds[s]:.0f} |" if s in seconds else f"| {s} | (earlier run) |"
               for s in NOTEBOOKS if s in seconds or (fig_dir / s / "metrics.json").is_file()],
             f"| total | {sum(seconds.values()):.0f} |", ""]
    out = fig_dir / "RESULTS.md"
    return write_text(out, "\n".join(lines))


# ----------------------------------------------------------------------------- entry point
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


@contextmanager
def _thread_env(threads: int | None):
    """Set the kernels' CPU thread count (they inherit this process's environment)."""
    saved = {k: os.environ.get(k) for k in THREAD_VARS}
    if threads:
        os.environ.update({k: str(int(threads)) for k in THREAD_VARS})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass
class PipelineRun:
    """One run of the pipeline (every field has a default that runs as it is)."""
    profile: str = "quick"
    dataset: str | None = None              # override the profile's dataset
    fig_dir: str | Path | None = None       # None: the profile's (default_fig_dir)
    run_root: str | Path = "runs"
    only: list[str] | str | None = None     # notebook prefixes (select_notebooks)
    overrides: dict = field(default_factory=dict)   # parameters set in every notebook
    kernel: str = KERNEL
    log_output: bool = False
    threads: int | None = None              # CPU threads per kernel and per training
    publish: bool = True                    # copy executed notebooks to <fig_dir>/notebooks/
    sweep: bool = True                      # train the plan first, outside the kernels
    jobs: int | None = None                 # sweep: local worker processes


def run_pipeline(run: PipelineRun | None = None, **fields_) -> dict[str, float]:
    """Sweep the profile's plan (every training its notebooks open, :mod:`galib.tools.sweep`), then
    run the notebooks in order with ``GALIB_EXPECT_TRAINED=1`` (a kernel that would train is an
    error); returns ``{stem: seconds}``. ``run`` or keywords of :class:`PipelineRun`.

    ``threads`` (else the profile's ``threads``, else 1) caps the CPU threads of each kernel and
    each training: on a small, shared CPU one thread per process does not collapse under load.
    """
    run = replace(run or PipelineRun(), **fields_)
    _at_least_one("--threads", run.threads)
    _at_least_one("--jobs", run.jobs)
    prof = load_profile(run.profile)
    threads = run.threads if run.threads is not None else int(prof.get("threads") or 1)
    fig_dir = Path(run.fig_dir).resolve() if run.fig_dir else default_fig_dir(prof)
    run_root = Path(run.run_root).resolve()
    stems = select_notebooks(run.only if run.only is not None else prof.get("only"))
    overrides = {**run.overrides, **({"dataset": run.dataset} if run.dataset else {})}
    from .sweep import profile_plan              # every name and value checked: nothing made yet
    plan = profile_plan(prof, run_root, fig_dir, only=stems, overrides=overrides)
    _check_folder(run_root, "--run-root")
    _check_folder(fig_dir, "--fig-dir")
    if run.sweep:
        _sweep_first(plan, threads, run.jobs)
    with _thread_env(threads), expecting_trained(run.sweep):
        seconds = _run_notebooks(prof, stems, fig_dir, run_root, overrides, run)
    commit = git_commit()
    results = write_results(fig_dir, prof["name"], seconds, commit)
    print(f"[pipeline] {len(stems)} notebooks in {sum(seconds.values()):.0f}s; wrote {results}")
    return seconds


def _check_folder(path: Path, flag: str) -> None:
    """A folder the pipeline writes into: creatable and writable, else a one-line error."""
    if path.exists() and not path.is_dir():
        raise PipelineError(f"{flag} {path} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PipelineError(f"{flag} {path} cannot be created: {err.strerror or err}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise PipelineError(f"{flag} {path} is not writable")


def _at_least_one(flag: str, value) -> None:
    """``--threads``/``--jobs``: None (the default) or a positive integer, as the sweep asks."""
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise PipelineError(f"{flag} must be at least 1 (or left out for the default); got {value!r}")


def _sweep_first(plan: list, threads: int, jobs: int | None) -> None:
    from .executors import EngineOptions
    from .sweep import summary, sweep
    cores = os.cpu_count() or 1
    jobs = jobs if jobs is not None else max(1, cores // threads)
    outcomes = sweep(plan, "local", EngineOptions(jobs=jobs, threads=threads),
                     progress=sys.stdout.isatty())
    text, status = summary(outcomes)
    print(text, flush=True)
    if status:
        raise PipelineError("the sweep failed (see above); the notebooks were not run")


def _run_notebooks(prof: dict, stems, fig_dir: Path, run_root: Path, overrides: dict,
                   run: PipelineRun) -> dict[str, float]:
    exec_dir = run_root / prof["name"] / "executed"
    seconds: dict[str, float] = {}
    for i, stem in enumerate(stems, 1):
        params = notebook_parameters(prof, stem, fig_dir, run_root, overrides)
        print(f"[pipeline] notebook {i}/{len(stems)}: {stem} …", flush=True)
        seconds[stem] = run_notebook(stem, params, exec_dir, run.kernel, run.log_output)
        if run.publish:
            publish_notebook(exec_dir / f"{stem}.ipynb", fig_dir / PUBLISH_DIR / f"{stem}.ipynb")
        print(f"[pipeline] {stem} done in {seconds[stem]:.0f}s → {fig_dir / stem}", flush=True)
    return seconds


def _parse_set(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise PipelineError(f"--set expects key=value, got {item!r}")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value                                    # a bare string
    return out


def main(argv: list[str] | None = None) -> int:
    ap = ShortUsageParser(
        prog="python -m galib.tools.pipeline", description=__doc__.split("\n")[0],
        epilog="Runs the notebooks of a source checkout (notebooks/ beside galib/, or $GALIB_HOME). "
               "One notebook by hand: papermill notebooks/02_training.ipynb out.ipynb -p epochs 3, "
               "or -f notebooks/params/<profile>/<stem>.yaml.")
    ap.add_argument("--profile", default="quick", help="smoke | quick | paper, or a path to a .json")
    ap.add_argument("--dataset", default=None, help="override the profile's dataset")
    ap.add_argument("--fig-dir", default=None,
                    help="where figures/metrics go (default: figures/ for the quick profile, whose "
                         "figures are committed; runs/<profile>/figures for the others)")
    ap.add_argument("--run-root", default=str(ROOT / "runs"), help="where runs and executed notebooks go")
    ap.add_argument("--only", default=None, help="comma-separated notebook prefixes, e.g. 01,02")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a parameter (Python literal) in every selected notebook that "
                         "declares it; a name none of them declares is an error; repeatable")
    ap.add_argument("--kernel", default=KERNEL, help="Jupyter kernel name (default: galib)")
    ap.add_argument("--log-output", action="store_true", help="stream the notebooks' output")
    ap.add_argument("--threads", type=int, default=None,
                    help="CPU threads per kernel and per training (default: the profile's, else 1)")
    ap.add_argument("--jobs", type=int, default=None,
                    help="trainings side by side in the sweep (default: cores / threads)")
    ap.add_argument("--no-sweep", action="store_true",
                    help="do not train first: the notebooks train what they miss themselves")
    ap.add_argument("--no-publish", action="store_true",
                    help=f"do not copy the executed notebooks to <fig-dir>/{PUBLISH_DIR}/")
    ap.add_argument("--write-params", action="store_true",
                    help="only regenerate notebooks/params/<profile>/<notebook>.yaml from the profiles")
    args = ap.parse_args(argv)
    os.environ.setdefault(COMMAND_ENV, "python -m galib.tools.pipeline " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)))
    try:
        if args.write_params:
            for path in write_flat_params():
                print(f"[pipeline] wrote {path}")
            return 0
        run_pipeline(PipelineRun(args.profile, args.dataset, args.fig_dir, args.run_root, args.only,
                                 _parse_set(args.set), args.kernel, args.log_output, args.threads,
                                 not args.no_publish, not args.no_sweep, args.jobs))
    except PipelineError as err:
        print(f"[pipeline] FAILED: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("[pipeline] interrupted (Ctrl-C); what finished is kept, run again to go on",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

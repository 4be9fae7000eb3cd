"""Run the notebooks 01→06 headlessly with papermill and summarise them in ``RESULTS.md``.

    python -m galib.tools.pipeline --profile quick [--dataset mnist] [--fig-dir figures] [--run-root runs]

A profile (``notebooks/params/<profile>.json``) holds ``common`` parameters and per-notebook
overrides under ``notebooks``. The pipeline adds ``fig_dir``, ``run_dir`` and ``interactive=False``:
02, 04 and 05 share one training run (``<run-root>/<profile>/<dataset>/ald``), 03 trains under
``.../tau_sweep/tau_<τ>`` and 05's other baselines next to it (``.../ae``, ``.../manual``). Executed notebooks go to
``<run-root>/<profile>/executed/``; each notebook writes ``<fig-dir>/<stem>/metrics.json`` and its
PNGs, and at the end ``<fig-dir>/RESULTS.md`` tabulates every ``summary`` block with the dataset,
profile and git commit. A failing cell stops the run, naming the notebook and the cell.
"""
from __future__ import annotations

import argparse
import ast
import datetime as dt
import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from ..evaluation.tables import markdown_table
from ..io import write_text

ROOT = Path(__file__).resolve().parents[2]        # the source checkout (notebooks/ beside galib/)
NOTEBOOK_DIR = ROOT / "notebooks"
PARAMS_DIR = NOTEBOOK_DIR / "params"
NOTEBOOKS = ("01_data_pairing", "02_training", "03_mask_sparsity_vs_tau", "04_latent_traversals",
             "05_linear_probe", "06_blocked")
KERNEL = "galib"
# Run folders under <run-root>/<profile>/<dataset>/: the ALD model of 02 is "ald", which is also
# where 05's run_baselines looks for its "ald" baseline, so 04 and 05 reuse 02's run.
RUN_FOLDERS = {"03_mask_sparsity_vs_tau": "tau_sweep", "06_blocked": "blocked"}
DEFAULT_RUN_FOLDER = "ald"
EXTRA_DIRS = {"05_linear_probe": {"baseline_dir": ""}}


class PipelineError(RuntimeError):
    """A notebook failed or the profile is invalid; the message names what and where."""


def load_profile(name_or_path: str) -> dict:
    """Profile dict from ``notebooks/params/<name>.json`` or an explicit path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PARAMS_DIR / f"{name_or_path}.json"
    if not path.is_file():
        known = sorted(p.stem for p in PARAMS_DIR.glob("*.json"))
        raise PipelineError(f"no profile {name_or_path!r} (looked for {path}); known: {known}")
    prof = json.loads(path.read_text())
    unknown = set(prof.get("notebooks", {})) - set(NOTEBOOKS)
    if unknown:
        raise PipelineError(f"profile {path.name} names unknown notebooks {sorted(unknown)}")
    prof.setdefault("name", path.stem)
    return prof


def notebook_parameters(profile: dict, stem: str, fig_dir: Path, run_root: Path,
                        overrides: dict | None = None) -> dict:
    """Parameters papermill injects into notebook ``stem``."""
    p = {**profile.get("common", {}), **profile.get("notebooks", {}).get(stem, {}),
         **(overrides or {})}
    base = run_root / profile["name"] / str(p.get("dataset", "auto"))
    p["run_dir"] = str(base / RUN_FOLDERS.get(stem, DEFAULT_RUN_FOLDER))
    for key, folder in EXTRA_DIRS.get(stem, {}).items():
        p[key] = str(base / folder)
    p["fig_dir"] = str(fig_dir)
    p["interactive"] = False
    return p


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


def run_notebook(stem: str, params: dict, out_dir: Path, kernel: str = KERNEL,
                 log_output: bool = False) -> float:
    """Execute one notebook; returns wall seconds, raises :class:`PipelineError` on failure."""
    import papermill as pm
    nb = NOTEBOOK_DIR / f"{stem}.ipynb"
    out = out_dir / f"{stem}.ipynb"
    out_dir.mkdir(parents=True, exist_ok=True)
    check_parameters(nb, params)
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(str(nb), str(out), parameters=params, kernel_name=kernel,
                            cwd=str(NOTEBOOK_DIR), progress_bar=False, log_output=log_output)
    except pm.PapermillExecutionError as err:
        raise PipelineError(_describe_failure(nb, out, err)) from None
    except Exception as err:                                   # dead kernel, missing kernel …
        hint = (f" (is the Jupyter kernel {kernel!r} installed? run `make setup`)"
                if "kernel" in str(err).lower() else "")
        raise PipelineError(_describe_failure(nb, out, err) + hint) from None
    return time.perf_counter() - t0


# ----------------------------------------------------------------------------- RESULTS.md
def git_commit() -> str:
    """Short commit hash, with ``-dirty`` when tracked code has changes; ``unknown`` outside git.

    ``figures/`` is left out of the check: the pipeline itself rewrites it while it runs.
    """
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                ".", ":(exclude)figures"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


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


def run_pipeline(profile: str = "quick", dataset: str | None = None, fig_dir: str | Path = "figures",
                 run_root: str | Path = "runs", only: list[str] | None = None,
                 overrides: dict | None = None, kernel: str = KERNEL,
                 log_output: bool = False, threads: int | None = None) -> dict[str, float]:
    """Run the profile's notebooks in order; returns ``{stem: seconds}``.

    ``threads`` (else the profile's ``threads``, else the torch default) caps the CPU threads of
    each kernel: on a small, shared CPU one thread is much faster than oversubscribed cores.
    """
    prof = load_profile(profile)
    with _thread_env(threads or prof.get("threads")):
        return _run(prof, dataset, fig_dir, run_root, only, overrides, kernel, log_output)


def _run(prof, dataset, fig_dir, run_root, only, overrides, kernel, log_output) -> dict[str, float]:
    fig_dir = Path(fig_dir).resolve()
    run_root = Path(run_root).resolve()
    overrides = dict(overrides or {})
    if dataset:
        overrides["dataset"] = dataset
    stems = [s for s in NOTEBOOKS if not only or any(s.startswith(o) for o in only)]
    if not stems:
        raise PipelineError(f"--only {only} matches none of {list(NOTEBOOKS)}")
    exec_dir = run_root / prof["name"] / "executed"
    seconds: dict[str, float] = {}
    for stem in stems:
        params = notebook_parameters(prof, stem, fig_dir, run_root, overrides)
        print(f"[pipeline] {stem} …", flush=True)
        seconds[stem] = run_notebook(stem, params, exec_dir, kernel, log_output)
        print(f"[pipeline] {stem} done in {seconds[stem]:.0f}s → {fig_dir / stem}", flush=True)
    commit = git_commit()
    results = write_results(fig_dir, prof["name"], seconds, commit)
    print(f"[pipeline] {len(stems)} notebooks in {sum(seconds.values()):.0f}s; wrote {results}")
    return seconds


def _parse_set(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise PipelineError(f"--set expects key=value, got {item!r}")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value                                    # a bare string
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="quick", help="smoke | quick | paper, or a path to a .json")
    ap.add_argument("--dataset", default=None, help="override the profile's dataset")
    ap.add_argument("--fig-dir", default=str(ROOT / "figures"), help="where figures/metrics go")
    ap.add_argument("--run-root", default=str(ROOT / "runs"), help="where runs and executed notebooks go")
    ap.add_argument("--only", default=None, help="comma-separated notebook prefixes, e.g. 01,02")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a parameter in every notebook (Python literal), repeatable")
    ap.add_argument("--kernel", default=KERNEL, help="Jupyter kernel name (default: galib)")
    ap.add_argument("--log-output", action="store_true", help="stream the notebooks' output")
    ap.add_argument("--threads", type=int, default=None,
                    help="CPU threads per kernel (default: the profile's 'threads', else torch's)")
    args = ap.parse_args(argv)
    try:
        run_pipeline(args.profile, args.dataset, args.fig_dir, args.run_root,
                     args.only.split(",") if args.only else None, _parse_set(args.set),
                     args.kernel, args.log_output, args.threads)
    except PipelineError as err:
        print(f"[pipeline] FAILED: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

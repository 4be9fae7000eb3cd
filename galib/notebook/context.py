"""What every notebook does first and last: parameters → config, data, group, title and run
folder (:func:`setup`), and the ``metrics.json`` it ends with (:meth:`Context.finish`).

**Paths.** Relative ``run_dir``, ``fig_dir``, ``baseline_dir`` and ``data_root`` resolve against
:func:`home`, never against the kernel's working directory, so ``papermill`` gives the same result
from any folder. :func:`home` is ``$GALIB_HOME`` if set, else the source checkout that holds this
package (``notebooks/`` beside ``galib/``), else the current directory (an installed package).
``data_root = None`` means ``$GALIB_DATA_ROOT``, else ``<home>/data`` (:func:`setup` sets
``$GALIB_DATA_ROOT`` in the kernel, so the studies' own dataset loads look there too; the config's
``data_root`` stays ``None``, so run folders and cached rows do not depend on the path).

**Run folders.** ``run_dir = None`` picks a folder keyed by the configuration,
``<home>/runs/lab/<family>/<dataset>-<group>-<key>`` (:func:`default_run_dir`): the key hashes every
``TrainConfig`` field that changes what is trained (:func:`run_key`), so ``-p tau 0.3`` gets its own
run and another ``epochs`` never reuses a shorter or longer one. 02, 04 and 05 share a family, so
they find each other's ALD run; 05's baselines train beside it. :func:`setup` prints the folder and
whether it holds a finished run.

**Parameter check.** Under papermill, a name injected with ``-p``/``-f`` that the notebook's
``parameters`` cell does not declare raises :class:`UnknownParameterError` in :func:`setup`
(papermill itself only logs a warning and the notebook would run its own defaults).
"""
from __future__ import annotations

import ast
import difflib
import functools
import hashlib
import json
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Mapping

import torch

from ..datasets import DataSplits, load_dataset
from ..devices import configure_threads
from ..experiments.registry import NOTEBOOKS
from ..experiments.training import flat_scalars  # noqa: F401  (notebooks and tests use it from here)
from ..groups import Group, get_group
from ..io import jsonable, save_json
from ..train import TrainConfig
from ..train.limits import MAX_SEED, check_limits, seed_problem
from .figures import tag

_LITERALS = (int, float, str, bool, type(None), list, tuple, dict)
HOME_ENV = "GALIB_HOME"
DATA_ENV = "GALIB_DATA_ROOT"
COMMAND_ENV = "GALIB_COMMAND"       # the command that ran the notebook (the pipeline sets it)
LAB = Path("runs") / "lab"          # under home(): default run folders and figures of the notebooks
PATH_PARAMS = ("run_dir", "fig_dir", "baseline_dir", "data_root")
# Config fields that do not change what a run computes: left out of the run key.
KEY_FREE = ("device", "data_root", "amp")
PAPERMILL_HEADER = "# Parameters"           # first line of papermill's injected cell
PARAMETERS_HEADER = "# Parameters:"         # first line of every notebook's own parameters cell


class UnknownParameterError(ValueError):
    """papermill injected a parameter the notebook does not declare."""


# ----------------------------------------------------------------------------- paths
def home() -> Path:
    """The folder relative paths resolve against: ``$GALIB_HOME``, else the source checkout
    holding this package (``notebooks/`` beside ``galib/``), else the current directory."""
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser().resolve()
    src = Path(__file__).resolve().parents[2]
    if (src / "notebooks").is_dir() and (src / "galib").is_dir():
        return src
    return Path.cwd().resolve()


def resolve_path(path: str | os.PathLike, mkdir: bool = True) -> Path:
    """``path`` made absolute against :func:`home` (``~`` expanded); created unless ``mkdir=False``."""
    p = Path(path).expanduser()
    p = (p if p.is_absolute() else home() / p).resolve()
    if mkdir:
        p.mkdir(parents=True, exist_ok=True)
    return p


def source_commit() -> str:
    """Short commit of :func:`home`, with ``-dirty`` when tracked files other than ``figures/``
    differ from it (the pipeline rewrites ``figures/`` while it runs); ``unknown`` outside git."""
    import subprocess
    try:
        run = functools.partial(subprocess.run, cwd=home(), capture_output=True, text=True, check=True)
        sha = run(["git", "rev-parse", "--short", "HEAD"]).stdout.strip()
        dirty = run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                     ":(exclude)figures"]).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def relative_paths(obj, root: Path | None = None):
    """``obj`` with every ``<root>/…`` in its strings made relative to ``root`` (default
    :func:`home`), and then the user's home folder written ``~`` (run roots kept outside the
    checkout), so a file written here reads the same on any machine."""
    root = str(root or home())
    if isinstance(obj, dict):
        return {k: relative_paths(v, Path(root)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [relative_paths(v, Path(root)) for v in obj]
    if isinstance(obj, str):
        user = str(Path.home())
        text = obj.replace(root + os.sep, "").replace(root, ".")
        return text.replace(user + os.sep, "~" + os.sep) if user not in ("", os.sep) else text
    return obj


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(home()))
    except ValueError:
        return str(path)


# ----------------------------------------------------------------------------- run keys
def run_key(cfg: TrainConfig, exclude=()) -> str:
    """A short hash of the config fields that define a run (all but ``KEY_FREE`` and
    ``exclude``); ints given for float fields count as the same float."""
    d = {}
    for f in fields(TrainConfig):
        if f.name in KEY_FREE or f.name in exclude:
            continue
        v = getattr(cfg, f.name)
        if isinstance(f.default, float) and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        d[f.name] = v
    return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]


def default_run_dir(stem: str, cfg: TrainConfig, root: str | os.PathLike | None = None) -> Path | None:
    """``<root or home/runs/lab>/<family>/<dataset>-<group>-<key>[/<sub>]`` for notebooks that
    train (their ``family`` in :data:`galib.experiments.registry.NOTEBOOKS`); ``None`` for
    those that do not."""
    nb = NOTEBOOKS.get(stem)
    if nb is None or nb.family is None:
        return None
    family, sub, swept = nb.family, nb.sub, nb.swept
    label = "-".join(str(getattr(cfg, k)) for k in ("dataset", "group") if k not in swept)
    label = re.sub(r"[^A-Za-z0-9._]+", "-", label).strip("-")[:40]
    folder = Path(root) if root is not None else home() / LAB
    path = folder / family / f"{label}-{run_key(cfg, swept)}"
    return path / sub if sub else path


def describe_run_dir(run_dir: Path, cfg: TrainConfig) -> str:
    """One line on what ``run_dir`` holds: a finished run, an unfinished one, earlier runs, or nothing."""
    hist = run_dir / "history.json"
    if hist.is_file():
        try:
            done = len(json.loads(hist.read_text()).get("history", []))
        except (OSError, ValueError):
            done = None
        if done is not None and done >= cfg.epochs:
            return f"reusing its finished run ({done} epoch{'s' if done != 1 else ''})"
        if done is not None:
            return f"resuming its run at epoch {done}/{cfg.epochs}"
    runs = sorted(p.parent.relative_to(run_dir).as_posix() for p in run_dir.glob("**/history.json"))
    if runs:
        shown = ", ".join(runs[:6]) + (", …" if len(runs) > 6 else "")
        return f"holds {len(runs)} earlier run(s), reused where they match ({shown})"
    return "new"


# ----------------------------------------------------------------------------- parameters
def collect_params(namespace: Mapping, before: set | frozenset) -> dict:
    """The parameters a notebook defined (names new since ``before`` holding plain literals)."""
    return {k: v for k, v in namespace.items()
            if k not in before and not k.startswith("_") and isinstance(v, _LITERALS)}


def train_config(params: Mapping, **overrides) -> TrainConfig:
    """``TrainConfig`` from the notebook parameters that are config fields (plus ``overrides``),
    validated (seeds and sizes within :mod:`galib.train.limits` too); the notebooks' own parameters are
    checked first (:func:`check_notebook_params`)."""
    check_notebook_params(params)
    names = {f.name for f in fields(TrainConfig)}
    d = {k: v for k, v in params.items() if k in names}
    d.update(overrides)
    return check_limits(TrainConfig.from_dict(d).validate())


def _positive(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def _list_of(ok, empty: bool = True, none: bool = False):
    return lambda v: (none and v is None) or (isinstance(v, (list, tuple)) and (empty or len(v) > 0)
                                              and all(ok(x) for x in v))


def _in_unit(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 < v < 1.0


# The notebooks' parameters that are not TrainConfig fields: (what is allowed, check).
NOTEBOOK_PARAMS = {
    "seeds": (f"a list of training seeds, integers in [0, {MAX_SEED}], e.g. [42, 43], or None",
              _list_of(lambda x: seed_problem("seed", x) is None, none=True)),
    "taus": ("a non-empty list of thresholds in (0, 1), e.g. [0.3, 0.5]", _list_of(_in_unit, empty=False)),
    "init_test_taus": ("a list of thresholds in (0, 1), e.g. [0.5] (or [] or None: no test)",
                       _list_of(_in_unit, none=True)),
    "max_test": ("a positive integer or None (all)", lambda v: v is None or _positive(v)),
    "probe_max_train": ("a positive integer or None (all)", lambda v: v is None or _positive(v)),
    "probe_iters": ("a positive integer", _positive),
    "n_images": ("a positive integer", _positive),
    "baselines": ("a non-empty list of baseline names", _list_of(lambda x: isinstance(x, str), empty=False)),
    "designs": ("a list of design names or None", _list_of(lambda x: isinstance(x, str), none=True)),
    "datasets": ("a non-empty list of dataset names", _list_of(lambda x: isinstance(x, str), empty=False)),
    "models": ("a list of model names or None", _list_of(lambda x: isinstance(x, str), none=True)),
    "interactive": ("True or False", lambda v: isinstance(v, bool)),
}


def check_notebook_params(params: Mapping) -> None:
    """Raise ``ValueError`` naming the first notebook parameter (:data:`NOTEBOOK_PARAMS`) whose
    value is not allowed, and what is (e.g. ``-p taus 0.5``: a list is needed)."""
    for key, (allowed, ok) in NOTEBOOK_PARAMS.items():
        if key in params and not ok(params[key]):
            raise ValueError(f"{key} must be {allowed}; got {params[key]!r}")


def assigned_names(source: str) -> set[str]:
    """Names a cell assigns at top level (``name = ...``); empty if it does not parse."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    return {t.id for s in tree.body if isinstance(s, (ast.Assign, ast.AnnAssign))
            for t in (s.targets if isinstance(s, ast.Assign) else [s.target]) if isinstance(t, ast.Name)}


def _first_line(source: str) -> str:
    return source.lstrip().split("\n", 1)[0].strip()


def injected_and_declared(history) -> tuple[set[str] | None, set[str] | None]:
    """From the kernel's input history (IPython's ``_ih``), the names papermill's last injected
    cell set (its first line is ``# Parameters``) and those the notebook's own parameters cell
    declares (first line ``# Parameters: …``) — ``None`` where no such cell ran."""
    injected = declared = None
    for src in reversed(list(history or [])):
        if not isinstance(src, str):
            continue
        first = _first_line(src)
        if injected is None and first == PAPERMILL_HEADER:
            injected = assigned_names(src)
        elif declared is None and first.startswith(PARAMETERS_HEADER):
            declared = assigned_names(src)
    return injected, declared


def parameters_source(nb: Mapping) -> str | None:
    """The source of the cell tagged ``parameters`` of a notebook (its JSON), or ``None``."""
    for cell in nb.get("cells", []):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            src = cell["source"]
            return "".join(src) if isinstance(src, list) else src
    return None


def declared_in_notebook(path: str | os.PathLike) -> set[str] | None:
    """Names assigned by the cell tagged ``parameters`` of the notebook file at ``path``."""
    try:
        src = parameters_source(json.loads(Path(path).read_text()))
    except (OSError, ValueError):
        return None
    return None if src is None else assigned_names(src)


def notebook_defaults(stem: str) -> dict:
    """The literal values the ``parameters`` cell of ``notebooks/<stem>.ipynb`` assigns (what the
    notebook runs with when nothing is injected)."""
    path = home() / "notebooks" / f"{stem}.ipynb"
    src = parameters_source(json.loads(path.read_text()))
    if src is None:
        raise ValueError(f"{path} has no cell tagged 'parameters'")
    return {t.id: ast.literal_eval(s.value) for s in ast.parse(src).body if isinstance(s, ast.Assign)
            for t in s.targets if isinstance(t, ast.Name)}


def notebook_config(stem: str, params: Mapping) -> tuple[dict, TrainConfig]:
    """What :func:`setup` makes of injected ``params`` without running the notebook: the full
    parameters (the notebook's defaults, then ``params``; paths resolved) and the config."""
    full = {**notebook_defaults(stem), **params}
    params = resolve_params(stem, full, train_config(full))
    return params, train_config(params)


def check_injected(stem: str, namespace: Mapping) -> None:
    """Raise :class:`UnknownParameterError` if papermill injected a name the notebook's parameters
    cell does not declare (a typo such as ``-p epoch 3``). Needs no papermill: it reads the
    kernel's input history; outside papermill (no injected cell) it checks nothing."""
    injected, declared = injected_and_declared(namespace.get("_ih"))
    if not injected:
        return
    if declared is None:
        declared = declared_in_notebook(home() / "notebooks" / f"{stem}.ipynb")
    if declared is None:
        return
    unknown = sorted(injected - declared)
    if unknown:
        hints = {u: difflib.get_close_matches(u, declared, n=1) for u in unknown}
        hint = "; ".join(f"{u!r}: did you mean {m[0]!r}?" for u, m in hints.items() if m)
        raise UnknownParameterError(
            f"{stem}: unknown parameter(s) {unknown} (injected by papermill -p/-f/-y). "
            f"{hint + ' ' if hint else ''}Declared: {sorted(declared)}")


# ----------------------------------------------------------------------------- setup / finish
@dataclass
class Context:
    """A notebook's parameters and what its first cell builds from them."""
    stem: str                 # the notebook's name, e.g. "02_training"
    params: dict              # its parameters (flat literals, paths resolved), as in metrics.json
    out: Path                 # {fig_dir}/{stem}: its figures and metrics.json
    cfg: TrainConfig
    data: DataSplits
    group: Group
    title: str                # figure-title suffix, e.g. "fashion-mnist · c4 · τ = 0.5"
    run_dir: Path | None = None   # where this notebook trains (None: it does not)
    metrics: dict | None = field(default=None, repr=False)  # what finish wrote

    def provenance(self) -> dict:
        """Where a file this notebook writes comes from: its ``params`` (paths relative to the
        repository), the ``commit`` and the ``command``."""
        command = os.environ.get(COMMAND_ENV) or f"notebooks/{self.stem}.ipynb (Jupyter or papermill)"
        return relative_paths({"commit": source_commit(), "command": command, "params": self.params})

    def finish(self, metrics: Mapping) -> dict:
        """Write ``{out}/metrics.json`` (atomically): ``notebook``, ``dataset``, ``commit``,
        ``command``, ``params``, ``data`` and then ``metrics``, every path relative to the
        repository; keeps it as ``self.metrics`` (for :mod:`galib.notebook.findings`) and returns
        its ``summary`` for the cell to show."""
        full = {"notebook": self.stem, "dataset": self.data.name, **self.provenance(),
                "data": self.data.describe(), **metrics}
        self.metrics = relative_paths(jsonable(full))
        write_metrics(self.metrics, self.out.parent, self.stem)
        return full.get("summary")


def resolve_params(stem: str, params: Mapping, cfg: TrainConfig) -> dict:
    """``params`` with ``fig_dir``, ``run_dir`` and ``baseline_dir`` absolute (``None`` filled in:
    ``<home>/runs/lab/figures``, :func:`default_run_dir`, the folder holding ``run_dir``) and an
    explicit ``data_root`` absolute; every path against :func:`home`."""
    p = dict(params)
    p["fig_dir"] = str(resolve_path(p.get("fig_dir") or LAB / "figures", mkdir=False))
    if p.get("data_root") is not None:
        p["data_root"] = str(resolve_path(p["data_root"], mkdir=False))
    if "run_dir" in p:
        rd = p["run_dir"]
        rd = default_run_dir(stem, cfg) if rd is None else resolve_path(rd, mkdir=False)
        p["run_dir"] = None if rd is None else str(rd)
    if "baseline_dir" in p:
        bd = p["baseline_dir"]
        if bd is None and p.get("run_dir") is not None:
            bd = Path(p["run_dir"]).parent
        p["baseline_dir"] = None if bd is None else str(resolve_path(bd, mkdir=False))
    return p


def setup(stem: str, namespace: Mapping, before: set | frozenset, title_with=("tau",)) -> Context:
    """Everything a notebook builds from its parameters: ``collect_params`` (papermill-injected
    names checked by :func:`check_injected`), paths resolved (:func:`resolve_params`; the run
    folder printed), the validated ``TrainConfig``, the data (``max_test`` capped), the group and
    the title, which names ``tau`` and any other parameter
    listed in ``title_with``. Seeds torch with ``seed``."""
    check_injected(stem, namespace)
    configure_threads()                  # 1 per kernel (OMP_NUM_THREADS or the fixed default)
    params = collect_params(namespace, before)
    if params.get("data_root") is None and not os.environ.get(DATA_ENV):
        os.environ[DATA_ENV] = str(home() / "data")     # this kernel's default: <home>/data
    cfg0 = train_config(params)
    params = resolve_params(stem, params, cfg0)
    cfg = train_config(params)
    torch.manual_seed(cfg.seed)
    data = load_dataset(cfg.dataset, cfg.data_root, seed=cfg.seed, max_train=cfg.max_train,
                        max_test=params.get("max_test"), val_fraction=cfg.val_fraction)
    extra = {k: params[k] for k in title_with if k != "tau"}
    title = tag(data.name, cfg.group, cfg.tau if "tau" in title_with else None, **extra)
    out = resolve_path(Path(params["fig_dir"]) / stem)
    run_dir = Path(params["run_dir"]) if params.get("run_dir") and default_run_dir(stem, cfg) is not None else None
    if run_dir is not None:
        print(f"[galib] run folder {_display(run_dir)}: {describe_run_dir(run_dir, cfg)}")
    return Context(stem, params, out, cfg, data, get_group(cfg.group), title, run_dir)


def write_metrics(metrics: Mapping, fig_dir: str | os.PathLike, stem: str) -> Path:
    """Write ``{fig_dir}/{stem}/metrics.json`` atomically; returns its path."""
    path = Path(fig_dir) / stem / "metrics.json"
    save_json(jsonable(metrics), path)
    return path

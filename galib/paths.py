"""Where things are, and where a written file says it came from.

* :func:`home` — the folder relative paths resolve against: ``$GALIB_HOME`` if set, else the
  source checkout that holds this package (``notebooks/`` beside ``galib/``), else the current
  directory (an installed package). Notebooks, the pipeline and the sweep all resolve against it,
  never against a kernel's working directory.
* :func:`source_commit` and :func:`relative_paths` — the provenance every written
  ``metrics.json`` and evidence file records: the commit, and paths that read the same on any
  machine.
* The environment names the kit reads (``*_ENV``) and the lab's run folder (:data:`LAB`).
"""
from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

HOME_ENV = "GALIB_HOME"
DATA_ENV = "GALIB_DATA_ROOT"
COMMAND_ENV = "GALIB_COMMAND"       # the command that ran the notebook (the pipeline sets it)
LAB = Path("runs") / "lab"          # under home(): default run folders and figures of the notebooks


def home() -> Path:
    """The folder relative paths resolve against: ``$GALIB_HOME``, else the source checkout
    holding this package (``notebooks/`` beside ``galib/``), else the current directory."""
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser().resolve()
    src = Path(__file__).resolve().parents[1]
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


def display_path(path: Path) -> str:
    """``path`` relative to :func:`home` where it lies under it, else as given."""
    try:
        return str(Path(path).relative_to(home()))
    except ValueError:
        return str(path)


def source_commit() -> str:
    """Short commit of :func:`home`, with ``-dirty`` when tracked files other than ``figures/``
    differ from it (the pipeline rewrites ``figures/`` while it runs); ``unknown`` outside git."""
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

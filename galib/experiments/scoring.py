"""Scored rows, computed once: the evaluation settings of a study and the row cache of a run.

:class:`EvalSettings` is what a study relays to :mod:`galib.evaluation` (the evaluation seed, the
test-image caps, the probe's budget) as one object instead of chains of keywords.
:func:`scored_row` scores a run once and keeps the row in ``<run_dir>/row.json``, reused while
the run, its data, the settings and :data:`ROW_VERSION` are unchanged; :func:`cached_scores` does
the same for any other score of a run (02's test scores, 05's probe-budget check, 04's swaps).

Scoring is a stage of the sweep (:class:`~galib.experiments.plan.Scoring`): the sweep scores
every row a notebook will read, and the notebooks only read them. Under ``GALIB_EXPECT_TRAINED``
a row that is not cached is an error naming it (:class:`~galib.experiments.plan.NotSweptError`),
as a training the sweep did not finish is; inside :func:`only_cached` a missing row raises
:class:`RowMissing` (how the sweep tells which rows are still to score).
"""
from __future__ import annotations

import contextlib
import contextvars
import io
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from ..io import save_json
from .plan import EXPECT_ENV, NotSweptError, expect_trained, expecting_trained, in_scoring_task

ROW_VERSION = 5                  # bump when the scores change meaning: cached rows are recomputed
                                 # (4: rows without split/objective, configs in today's names;
                                 # 5: the centred energy share, the matched random-encoder control)
_ONLY_CACHED = contextvars.ContextVar("galib_only_cached", default=False)


class RowMissing(LookupError):
    """A score is not in its cache and :func:`only_cached` forbids computing it."""


@contextlib.contextmanager
def only_cached():
    """Inside, a score missing from its cache raises :class:`RowMissing` instead of being
    computed (the sweep's check of which scorings are done)."""
    token = _ONLY_CACHED.set(True)
    try:
        yield
    finally:
        _ONLY_CACHED.reset(token)


def is_scored(task) -> bool:
    """Whether every score the :class:`~galib.experiments.plan.Scoring` ``task`` computes is in its
    cache (checked by running it with nothing computed and nothing trained; its output dropped).
    A task that fails for another reason counts as not scored: run, it reports the error."""
    try:
        with only_cached(), expecting_trained(), contextlib.redirect_stdout(io.StringIO()):
            task.score()
    except Exception:                          # noqa: BLE001 (RowMissing, NotSweptError, any other)
        return False
    return True


@dataclass(frozen=True)
class EvalSettings:
    """How a study scores its models (every field has a default that runs as it is)."""
    seed: int = 0                          # evaluation seed: group elements, probe splits
    probe: bool = True                     # fit the linear probes
    max_images: int | None = None          # test images for evaluate_model's scores (None: all)
    max_test: int | None = None            # test images loaded with the data (None: all)
    probe_max_train: int | None = None     # training images per probe (None: all)
    probe_max_test: int | None = None      # test images per probe (None: all)
    probe_iters: int | None = None         # L-BFGS iterations per l2 (warm-path) or in all (None: default)
    probe_l2: tuple | None = None          # the probe's l2 grid (None: the probe's default)
    probe_solver: str | None = None        # fit_probe's solver (None: its default, "warm-path")
    extra: Callable | None = None          # extra(model, data) -> dict: more scores per split model
    jobs: int = 1                          # processes that score uncached rows side by side (not a score)

    def __post_init__(self):
        if isinstance(self.jobs, bool) or not isinstance(self.jobs, int) or self.jobs < 1:
            raise ValueError(f"EvalSettings.jobs must be a positive integer; got {self.jobs!r}")

    def probe_kwargs(self) -> dict:
        """Keywords of :func:`galib.evaluation.features.probe_model`."""
        kw = {"max_train": self.probe_max_train, "max_test": self.probe_max_test}
        fit = {}
        if self.probe_iters is not None:
            fit["max_iter"] = int(self.probe_iters)
        if self.probe_l2 is not None:
            fit["l2_grid"] = tuple(self.probe_l2)
        if self.probe_solver is not None:
            fit["solver"] = str(self.probe_solver)
        if fit:
            kw["fit_kwargs"] = fit
        return kw

    def cache_key(self) -> dict:
        """What the cached row depends on besides the run and the data."""
        return {"probe": self.probe, "seed": self.seed, "eval": {"max_images": self.max_images},
                "probe_kw": self.probe_kwargs(), "extra": describe_function(self.extra)}


def describe_function(fn) -> str | None:
    """A stable text for a scoring function (and a partial's arguments), for the row cache."""
    if fn is None:
        return None
    base = getattr(fn, "func", fn)
    args = (getattr(fn, "args", ()), getattr(fn, "keywords", {}))
    return f"{base.__module__}.{base.__qualname__}{args!r}"


def scored_row(run_dir: str | Path, row: dict, cfg, data, settings_key: dict, score: Callable[[], dict],
               label: str, verbose: bool = True) -> dict:
    """``row`` plus ``score()`` (and ``eval_seconds``), or the row cached in ``run_dir/row.json``
    when it was made from the same row fields, config, data and settings."""
    key = {"row": {k: v for k, v in row.items() if k != "train_seconds"}, **settings_key}
    return cached_scores(Path(run_dir) / "row.json", key, lambda: {**row, **score()}, label,
                         cfg=cfg, data=data, verbose=verbose)


def cached_scores(path: str | Path, key: dict, compute: Callable[[], dict], label: str, cfg=None,
                  data=None, verbose: bool = True) -> dict:
    """``compute()`` (a dict; ``eval_seconds`` added), or what ``path`` holds when it was made
    from the same ``key``, run config ``cfg``, data and :data:`ROW_VERSION`. A missing or stale
    score is computed unless :func:`only_cached` (:class:`RowMissing`) or ``GALIB_EXPECT_TRAINED``
    (:class:`~galib.experiments.plan.NotSweptError`, naming it) says the sweep should have."""
    path = Path(path)
    text = json.dumps({**key, "config": None if cfg is None else asdict(cfg),
                       "data": None if data is None else data.describe(), "version": ROW_VERSION},
                      sort_keys=True, default=str)
    cached = _load_row(path, text)
    if cached is not None:
        if verbose:
            print(f"[galib] {label}: reusing {path}")
        return cached
    if _ONLY_CACHED.get():
        raise RowMissing(f"{label}: {path}")
    if expect_trained() and not in_scoring_task():
        raise NotSweptError(
            f"{label} is not scored ({path} is missing or stale) and {EXPECT_ENV} is set: the sweep "
            f"should have scored it (python -m galib.tools.sweep --profile ...). The plan and the "
            f"scores this notebook reads disagree")
    t0 = time.perf_counter()
    row = dict(compute())
    row["eval_seconds"] = time.perf_counter() - t0
    save_json({"key": text, "row": row}, path)
    if verbose:
        print(f"[galib] {label}: evaluated in {row['eval_seconds']:.1f}s")
    return row


def _load_row(path: Path, key: str) -> dict | None:
    if not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return saved["row"] if isinstance(saved, dict) and saved.get("key") == key else None

"""Studies as plans: the trainings a study needs, where each one runs, and train-or-load.

A :class:`Training` is one run: its ``TrainConfig``, the data it trains on (:class:`DataRequest`),
its run folder and a readable key. A training whose config depends on another's result names it
in ``needs`` and says how with ``derive`` (the random-mask control takes as many variant channels
as the same seed's learned mask). :func:`execute` runs one training in any process (a local
worker, a Slurm job, a Ray task): it is a plain function of a picklable :class:`Training`.

Run folders are named in one place, :func:`run_folder`: ``<root>/<name>`` for the base seed (so
notebooks 02, 04 and 05 share one ALD run) and ``<root>/<name>_seed<s>`` for the other seeds.

The notebooks call :func:`train_or_load`. Under ``GALIB_EXPECT_TRAINED=1`` (the pipeline sets it
after a sweep) it refuses to train in the kernel: a run the sweep did not finish is an error naming
the run and the command that trains it, so "the plan equals the runs the notebooks open" is
checked on every pipeline run.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import torch

from ..datasets import DataSplits, load_dataset
from ..devices import configure_threads
from ..train import TrainConfig, TrainResult, runs, train

EXPECT_ENV = "GALIB_EXPECT_TRAINED"
_SCORING_TASK = contextvars.ContextVar("galib_scoring_task", default=False)


class NotSweptError(RuntimeError):
    """A notebook asked for a run that the sweep did not finish (under ``GALIB_EXPECT_TRAINED``)."""


@dataclass(frozen=True)
class DataRequest:
    """What :func:`galib.datasets.load_dataset` is called with (the split is seeded by ``seed``)."""
    dataset: str = "auto"
    data_root: str | None = None
    seed: int = 42
    max_train: int | None = None
    max_test: int | None = None
    val_fraction: float = 0.2

    @classmethod
    def of(cls, cfg: TrainConfig, max_test: int | None = None, seed: int | None = None) -> "DataRequest":
        """The data of ``cfg`` (its dataset, root, cap and split), split with ``seed`` (default
        the config's seed: studies over seeds keep the base seed's split)."""
        return cls(cfg.dataset, cfg.data_root, cfg.seed if seed is None else int(seed), cfg.max_train,
                   max_test, cfg.val_fraction)

    def load(self, verbose: bool = False) -> DataSplits:
        return _load_cached(self, verbose)


@functools.lru_cache(maxsize=4)
def _load_cached(req: DataRequest, verbose: bool) -> DataSplits:
    return load_dataset(req.dataset, req.data_root, seed=req.seed, max_train=req.max_train,
                        max_test=req.max_test, val_fraction=req.val_fraction, verbose=verbose)


@dataclass(frozen=True)
class Training:
    """One run of a plan."""
    key: str                      # readable and unique in its plan, e.g. "05/random/seed43"
    config: TrainConfig           # complete, except what ``derive`` fills in from ``needs``
    run_dir: str                  # absolute folder of the run
    data: DataRequest
    needs: tuple[str, ...] = ()   # keys of trainings that must finish first
    derive: str | None = None     # how the config is completed from ``needs`` (see DERIVE)


@dataclass(frozen=True)
class Scoring:
    """One scoring task of a plan: rows (or other cached scores) of finished runs, computed once
    and kept in the run folders (:mod:`galib.experiments.scoring`), which the notebooks then only
    read. ``score`` is a picklable call (a :func:`functools.partial` of the study function the
    notebook calls, with the notebook's own settings), so the sweep and the notebook compute, and
    look up, the same row."""
    key: str                      # readable and unique in its plan, e.g. "05:rows/random/seed43"
    run_dir: str                  # folder of the run it scores (its log: <run_dir>/score.log)
    score: Callable               # score() computes the rows it misses (or reads them)
    needs: tuple[str, ...] = ()   # keys of the trainings it reads
    fits: float = 0.0             # feature columns its linear probes fit (the dry run's estimate)
    images: int = 0               # images it encodes (the dry run's estimate)


def run_folder(root: str | Path, name: str, seed: int | None = None, base_seed: int | None = None) -> Path:
    """Where the run ``name`` of training seed ``seed`` lives: ``root/name`` for the base seed (or
    when no seed is given), else ``root/name_seed<seed>``."""
    if seed is None or seed == base_seed:
        return Path(root) / name
    return Path(root) / f"{name}_seed{int(seed)}"


def seeds_of(cfg: TrainConfig, seeds=None) -> list[int]:
    """A study's training seeds: ``seeds`` as integers, or ``[cfg.seed]`` when ``None``."""
    return [cfg.seed] if seeds is None else [int(s) for s in seeds]


def plan_inputs(cfg: TrainConfig, seeds=None, data: DataRequest | None = None
                ) -> tuple[TrainConfig, list[int], DataRequest]:
    """What every plan starts from: the base config validated, its training seeds
    (:func:`seeds_of`) and the data they all train on (default: the base config's own)."""
    cfg = cfg.validate()
    return cfg, seeds_of(cfg, seeds), data or DataRequest.of(cfg)


# ----------------------------------------------------------------------------- derived configs
def n_variant_of(training: Training, data: DataSplits | None = None) -> int:
    """Variant channels of the finished run ``training`` (its best epoch's hard mask)."""
    model = train_or_load(training, data).model
    return int(model.hard_mask().sum())


def _trains_alike(a: DataRequest, b: DataRequest) -> bool:
    """Same training/validation images (the test cap does not matter for training)."""
    return replace(a, max_test=None) == replace(b, max_test=None)


def _same_size_random(training: Training, deps: list[Training], data: DataSplits | None) -> TrainConfig:
    (learned,) = deps
    shared = data if data is not None and _trains_alike(learned.data, training.data) else None
    return replace(training.config, mask_variant=n_variant_of(learned, shared))


# name → function(training, the trainings it needs, its data or None) → complete config
DERIVE = {"random-mask-size": _same_size_random}


def resolve(training: Training, plan: dict[str, Training] | list[Training],
            data: DataSplits | None = None) -> TrainConfig:
    """The complete config of ``training``: ``derive`` applied to the finished runs it needs."""
    if training.derive is None:
        return training.config
    table = plan if isinstance(plan, dict) else {t.key: t for t in plan}
    missing = [k for k in training.needs if k not in table]
    if missing:
        raise KeyError(f"{training.key} needs {missing}, which the plan does not hold")
    if training.derive not in DERIVE:
        raise ValueError(f"{training.key}: unknown derive {training.derive!r}; known: {sorted(DERIVE)}")
    return DERIVE[training.derive](training, [table[k] for k in training.needs], data)


# ----------------------------------------------------------------------------- train or load
def epochs_done(run_dir: str | Path) -> int:
    """Epochs ``run_dir``'s ``history.json`` records (0 when it is missing or unreadable); read
    without a lock: the run dir's own checks happen when it is opened."""
    try:
        return len(json.loads((Path(run_dir) / "history.json").read_text()).get("history", []))
    except (OSError, ValueError, AttributeError):
        return 0


# The config fields each ``derive`` fills in (taken from the run's own files when it is checked).
DERIVED_FIELDS = {"random-mask-size": ("mask_variant",)}


def run_status(training: Training, config: TrainConfig | None = None) -> tuple[str, str]:
    """``(status, why)`` of ``training``'s run folder (:func:`galib.train.runs.run_status`: its
    checkpoints and history.json checked as the trainer checks them on load) for ``config`` (the
    resolved config), else for ``training.config`` with the fields its ``derive`` fills in taken
    from the run's files."""
    free = () if config is not None or training.derive is None else DERIVED_FIELDS[training.derive]
    return runs.run_status(training.run_dir, config or training.config, free=free)


def is_finished(run: Training | str | Path, epochs: int | None = None) -> bool:
    """Whether ``run`` (a :class:`Training`, or a run folder checked against the run its files
    record) holds a finished run of ``epochs`` epochs (default: the training's) that opens as it
    is: last.pt loads, agrees with best.pt and history.json, and holds every epoch
    (:func:`run_status`). A count of history.json's rows is not enough: a truncated last.pt or
    another run's history.json would pass it."""
    if isinstance(run, Training):
        if epochs is not None:
            run = replace(run, config=replace(run.config, epochs=int(epochs)))
        return run_status(run)[0] == "finished"
    return runs.run_status(run, None, epochs)[0] == "finished"


def expect_trained() -> bool:
    return os.environ.get(EXPECT_ENV, "") not in ("", "0")


def in_scoring_task() -> bool:
    """Whether this code runs inside a sweep's :class:`Scoring` task (which scores what the
    cache misses, but never trains)."""
    return _SCORING_TASK.get()


def log_name(task) -> str:
    """The log file a sweep writes for ``task`` in its run folder."""
    return "score.log" if isinstance(task, Scoring) else "sweep.log"


def train_or_load(training: Training, data: DataSplits | None = None, plan=None,
                  progress: bool = False, verbose: bool = False) -> TrainResult:
    """Load the finished run of ``training`` or train it (resuming what is there). ``data`` is
    used when given (it must be what ``training.data`` loads), else loaded. Needs in ``plan``."""
    cfg = resolve(training, plan or {}, data)
    if expect_trained():
        status, why = run_status(training, cfg)
        if status in ("new", "unfinished"):        # a damaged run: train() names the file and the fix
            raise NotSweptError(
                f"run {training.key} ({training.run_dir}) is not finished ({why}) and {EXPECT_ENV} "
                f"is set: the sweep should have trained it (python -m galib.tools.sweep --profile "
                f"...). The plan and the runs this notebook opens disagree")
    data = data if data is not None else training.data.load(verbose=verbose)
    return train(cfg, run_dir=training.run_dir, data=data, progress=progress, verbose=verbose)


def execute(task: Training | Scoring, plan: dict | None = None, threads: int | None = None,
            log: bool = True) -> dict:
    """Run one task in this process (what a sweep worker calls) with ``threads``
    (:func:`galib.devices.configure_threads`). A training: load the data, complete the config,
    train or load; output goes to ``<run_dir>/sweep.log`` when ``log``; returns ``key``,
    ``epochs``, ``trained`` (epochs run now), ``seconds``, ``threads``. A :class:`Scoring`: score
    what its cache misses, never training (its trainings are finished); output to
    ``<run_dir>/score.log``; returns ``key``, ``scored`` (True), ``seconds``, ``threads``."""
    run_dir = Path(task.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    scoring = isinstance(task, Scoring)
    sink = open(run_dir / log_name(task), "a") if log else None
    try:
        with (contextlib.redirect_stdout(sink) if sink else contextlib.nullcontext()), \
                (contextlib.redirect_stderr(sink) if sink else contextlib.nullcontext()):
            configure_threads(int(threads) if threads else None)
            if scoring:
                token = _SCORING_TASK.set(True)
                try:
                    with expecting_trained():
                        task.score()
                finally:
                    _SCORING_TASK.reset(token)
                return {"key": task.key, "scored": True, "seconds": time.perf_counter() - t0,
                        "threads": torch.get_num_threads()}
            before = epochs_done(run_dir)
            res = train_or_load(task, plan=plan, verbose=True)
    finally:
        if sink:
            sink.close()
    return {"key": task.key, "epochs": len(res.history), "trained": len(res.history) - before,
            "seconds": time.perf_counter() - t0, "threads": torch.get_num_threads()}


@contextlib.contextmanager
def expecting_trained(value: bool = True):
    """``GALIB_EXPECT_TRAINED`` set to ``1`` (``value``) inside, restored after."""
    saved = os.environ.get(EXPECT_ENV)
    if value:
        os.environ[EXPECT_ENV] = "1"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(EXPECT_ENV, None)
        else:
            os.environ[EXPECT_ENV] = saved


# ----------------------------------------------------------------------------- plans
def merge(trainings, scorings=()) -> list[Training | Scoring]:
    """One entry per run folder (02, 04 and 05 share runs), dependencies first; a need on a
    merged-away key is pointed at the entry kept for its folder. Two different trainings that
    want one folder are an error. ``scorings`` (:class:`Scoring`) follow, their needs pointed
    the same way, one per key."""
    kept: dict[str, Training] = {}
    alias: dict[str, str] = {}
    for t in trainings:
        old = kept.get(t.run_dir)
        if old is None:
            kept[t.run_dir] = t
        elif _identity(old) != _identity(t):
            raise ValueError(f"two trainings want one run folder {t.run_dir}: {old.key} and {t.key} "
                             f"differ ({_diff(old, t)})")
        alias[t.key] = kept[t.run_dir].key
    scored = {s.key: s for s in scorings}
    out = [replace(t, needs=tuple(dict.fromkeys(alias.get(n, n) for n in t.needs)))
           for t in [*kept.values(), *scored.values()]]
    return order(out)


def _identity(t: Training) -> tuple:
    c = asdict(t.config)
    for k in ("device", "data_root", "amp", "threads"):
        c.pop(k, None)
    return json.dumps(c, sort_keys=True), replace(t.data, max_test=None, data_root=None), t.derive


def _diff(a: Training, b: Training) -> str:
    ca, cb = asdict(a.config), asdict(b.config)
    return ", ".join(f"{k}: {ca[k]!r} vs {cb[k]!r}" for k in ca if ca[k] != cb[k]) or "data differs"


def order(trainings: list) -> list:
    """Dependencies first (stable otherwise); a need outside the list or a cycle is an error."""
    keys = {t.key for t in trainings}
    for t in trainings:
        missing = [n for n in t.needs if n not in keys]
        if missing:
            raise ValueError(f"{t.key} needs {missing}, which the plan does not hold")
    done, out, pending = set(), [], list(trainings)
    while pending:
        ready = [t for t in pending if set(t.needs) <= done]
        if not ready:
            raise ValueError(f"circular needs: {[(t.key, t.needs) for t in pending]}")
        done.update(t.key for t in ready)
        out += ready
        pending = [t for t in pending if t.key not in done]
    return out

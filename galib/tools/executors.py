"""Run a plan's trainings on an existing engine: local worker processes, Slurm through submitit,
or Ray. The kit's own part is only the order (a training starts once the trainings it needs have
finished), the bookkeeping of failures and the progress line; the engines do the running.

Every engine runs :func:`galib.experiments.plan.execute` on a picklable
:class:`~galib.experiments.plan.Training`, with the same threads per training, so the weights
are the same whichever engine ran them. A failing training is reported with its key and log; the
trainings that need it are skipped; the others go on. A training whose local worker process died
runs once more (resuming from its last saved epoch) on a rebuilt pool; Ray's start is tried twice.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

from ..experiments.plan import Training, execute, log_name

ENGINES = ("local", "slurm", "submitit-local", "ray")


@dataclass
class EngineOptions:
    """How trainings are placed (the sweep's command line sets these)."""
    jobs: int = 1                       # local: worker processes at once
    threads: int = 1                    # torch threads per training (every engine)
    folder: str = "runs/sweep-logs"     # submitit: job logs and pickles
    partition: str | None = None        # slurm partition
    time_min: int = 240                 # slurm time limit per training, minutes
    cpus: int | None = None             # slurm/ray CPUs per training (default: threads)
    gpus: int = 0                       # slurm/ray GPUs per training
    ray_address: str | None = None      # ray: an existing cluster (None: start a local runtime)
    extra: dict = field(default_factory=dict)   # more submitit parameters (slurm_*)


@dataclass
class Outcome:
    key: str
    status: str                         # done | failed | skipped
    info: dict | None = None            # execute()'s return value
    error: str = ""
    log: str = ""


class EngineError(RuntimeError):
    """An engine that cannot start (Ray's runtime, a missing package); the message is one line."""


class _Local:
    """A pool of ``jobs`` spawned worker processes. A worker that dies (``kill -9``, out of
    memory) breaks the pool: the trainings it was running end with :class:`BrokenProcessPool`
    (:meth:`lost`: run_plan retries each once) and the next submit gets a new pool."""

    def __init__(self, opt: EngineOptions, fn=execute):
        self.jobs, self.limit, self.fn = opt.jobs, opt.jobs, fn
        self.pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.jobs, mp_context=get_context("spawn"))

    def submit(self, t: Training, plan: dict, threads: int):
        try:
            return self.pool.submit(self.fn, t, plan, threads)
        except BrokenProcessPool:                  # a worker died: its futures say so; go on anew
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = self._new_pool()
            return self.pool.submit(self.fn, t, plan, threads)

    @staticmethod
    def lost(err: BaseException) -> bool:
        """Whether ``err`` says the training's worker process died (not that the training failed)."""
        return isinstance(err, BrokenProcessPool)

    def wait(self, handles: list) -> list:
        done, _ = wait(handles, return_when=FIRST_COMPLETED)
        return list(done)

    @staticmethod
    def result(handle) -> dict:
        return handle.result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class _Submitit:
    """Each training a submitit job: Slurm, or submitit's local executor (``submitit-local``)."""

    def __init__(self, opt: EngineOptions, cluster: str | None):
        import submitit
        self.ex = submitit.AutoExecutor(folder=opt.folder, cluster=cluster)
        params = {"timeout_min": opt.time_min, "cpus_per_task": opt.cpus or opt.threads,
                  "name": "galib-sweep"}
        if cluster == "slurm" or cluster is None:
            params.update(slurm_partition=opt.partition, gpus_per_node=opt.gpus or None)
            params = {k: v for k, v in params.items() if v is not None}
        params.update(opt.extra)
        self.ex.update_parameters(**params)
        self.limit = 10 ** 6

    def submit(self, t: Training, plan: dict, threads: int):
        return self.ex.submit(execute, t, plan, threads)

    @staticmethod
    def wait(handles: list) -> list:
        while True:
            done = [h for h in handles if h.done()]
            if done:
                return done
            time.sleep(0.5)            # polling a scheduler's job state: nothing to wait on

    @staticmethod
    def result(handle) -> dict:
        return handle.result()

    def close(self) -> None:
        pass


class _Ray:
    """Each training a Ray task with its CPU/GPU request."""

    def __init__(self, opt: EngineOptions):
        import ray
        self.ray = ray
        self.started = not ray.is_initialized()
        if self.started:
            _start_ray(ray, address=opt.ray_address, include_dashboard=False, log_to_driver=False,
                       num_cpus=None if opt.ray_address else os.cpu_count())
        self.task = ray.remote(num_cpus=opt.cpus or opt.threads, num_gpus=opt.gpus)(execute)
        self.limit = 10 ** 6

    def submit(self, t: Training, plan: dict, threads: int):
        return self.task.remote(t, plan, threads)

    def wait(self, handles: list) -> list:
        done, _ = self.ray.wait(handles, num_returns=1)
        return done

    def result(self, handle) -> dict:
        return self.ray.get(handle)

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()


def _start_ray(ray, **kwargs) -> None:
    """``ray.init(**kwargs)``, tried once more if it fails (on a loaded machine Ray's local node
    can time out during startup, and a second start works); then an :class:`EngineError`."""
    for attempt in (1, 2):
        try:
            ray.init(**kwargs)
            return
        except Exception as err:                               # noqa: BLE001 (Ray raises plain Exception)
            why = " ".join((str(err).splitlines() or [""])[0].split())[:300] or type(err).__name__
            try:
                ray.shutdown()
            except Exception:                                  # noqa: BLE001 (nothing more to undo)
                pass
            if attempt == 2:
                raise EngineError(f"Ray did not start, twice ({why}); try again when the machine "
                                  f"is less loaded, check `ray status`, or use --executor local") from None
            print(f"[sweep] Ray did not start ({why}); trying once more", flush=True)


def make_engine(name: str, opt: EngineOptions):
    if name not in ENGINES:
        raise ValueError(f"unknown executor {name!r}; choose from {list(ENGINES)}")
    package = {"slurm": "submitit", "submitit-local": "submitit", "ray": "ray"}.get(name)
    try:
        if name == "local":
            return _Local(opt)
        if name in ("slurm", "submitit-local"):
            return _Submitit(opt, "slurm" if name == "slurm" else "local")
        return _Ray(opt)
    except ImportError as err:
        if package and getattr(err, "name", None) == package:
            raise EngineError(f"--executor {name} needs the package {package!r}, which is not "
                              f"installed: pip install {package}") from None
        raise


def run_plan(plan: list[Training], engine, threads: int, progress=None,
             finished: list[Training] = ()) -> list[Outcome]:
    """Run ``plan`` (dependencies first) on ``engine``; one :class:`Outcome` per training.
    ``finished`` are trainings done earlier that some of ``plan`` may need. ``progress(outcome)``
    is called as each one ends."""
    table = {t.key: t for t in [*finished, *plan]}
    pending, running, retried = list(plan), {}, set()
    outcomes = {t.key: Outcome(t.key, "done") for t in finished}
    while pending or running:
        for t in _ready(pending, outcomes):
            if len(running) >= engine.limit:
                break
            pending.remove(t)
            try:
                running[engine.submit(t, {k: table[k] for k in _closure(t, table)}, threads)] = t
            except Exception as err:                           # noqa: BLE001 (reported, others go on)
                outcomes[t.key] = Outcome(t.key, "failed", error=f"not started: {type(err).__name__}: "
                                          f"{err}"[:2000], log=str(Path(t.run_dir) / log_name(t)))
                progress and progress(outcomes[t.key])
        for t in [t for t in pending if _blocked(t, outcomes)]:
            pending.remove(t)
            outcomes[t.key] = Outcome(t.key, "skipped", error=f"needs {_blocked(t, outcomes)}, which failed")
            progress and progress(outcomes[t.key])
        if not running:
            if pending and not _ready(pending, outcomes):
                raise RuntimeError(f"no training can start: {[t.key for t in pending]}")
            continue
        for h in engine.wait(list(running)):
            t = running.pop(h)
            outcome = _outcome(engine, h, t, retry=t.key not in retried)
            if outcome is None:                                # its worker died: once more
                retried.add(t.key)
                pending.insert(0, t)
                print(f"[sweep] {t.key}: its worker process died (killed, or out of memory?); "
                      f"running it once more (it resumes from its last saved epoch)", flush=True)
                continue
            outcomes[t.key] = outcome
            progress and progress(outcome)
    return [outcomes[t.key] for t in plan]


FRESH_HINT = (" — the sweep never starts a run over: move the run folder aside, or repair or restart "
              "it by hand with `python -m galib.train --config RUN_DIR --repair` (or `--fresh`)")


def _outcome(engine, handle, t: Training, retry: bool = False) -> Outcome | None:
    """The outcome of a finished handle; None if its worker died and ``retry`` (run it again)."""
    log = str(Path(t.run_dir) / log_name(t))
    try:
        return Outcome(t.key, "done", engine.result(handle), log=log)
    except BaseException as err:                               # noqa: BLE001 (reported, others go on)
        lost = getattr(engine, "lost", lambda _e: False)(err)
        if lost and retry:
            return None
        text = f"{type(err).__name__}: {err}"[:2000]
        if lost:
            text = f"its worker process died twice (killed, or out of memory?): {text}"
        if "--fresh" in text or "--repair" in text:            # a run-dir error: say what to do here
            text += FRESH_HINT
        return Outcome(t.key, "failed", error=text, log=log)


def _ready(pending: list[Training], outcomes: dict) -> list[Training]:
    return [t for t in pending
            if all(outcomes.get(n) is not None and outcomes[n].status == "done" for n in t.needs)]


def _blocked(t: Training, outcomes: dict) -> list[str]:
    return [n for n in t.needs if outcomes.get(n) is not None and outcomes[n].status != "done"]


def _closure(t: Training, table: dict) -> list[str]:
    """The keys ``t`` needs, directly or through what they need."""
    out, todo = [], list(t.needs)
    while todo:
        k = todo.pop()
        if k not in out:
            out.append(k)
            todo += list(table[k].needs)
    return out

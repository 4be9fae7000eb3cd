"""Devices: which one to run on, where a model lives, the widest float it supports, whether it
runs bf16 autocast natively, and how many CPU threads a training process should use.

``configure_threads`` (the rule, measured in ``docs/performance.md``): one torch intra-op thread
per training process, unless this is the only worker and the cores are free (then one thread per
free core). torch's intra-op threads wait for each other at every op, so when another process
takes a core a 2-thread run on 2 cores slows down several times, while a 1-thread run loses
little; on an idle machine a single run gains from 2 threads.
"""
from __future__ import annotations

import contextlib
import os
import platform
import time
from pathlib import Path

import torch

CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")        # x86 flags of native bf16 matmul/convolution


def resolve_device(device: str) -> torch.device:
    """``auto`` → cuda, then mps, then cpu; an explicit device must exist."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device not in ("cpu", "cuda", "mps") and not device.startswith("cuda:"):
        raise ValueError(f"unknown device {device!r}; choose auto, cpu, cuda, cuda:N or mps")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available; use 'auto' or 'cpu'")
    return torch.device(device)


def wide_dtype(device: torch.device | str) -> torch.dtype:
    """float64 for sums and metrics, except on MPS, which has no float64 (float32 there)."""
    return torch.float32 if torch.device(device).type == "mps" else torch.float64


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of a model's first parameter (cpu for a model without parameters)."""
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


# ----------------------------------------------------------------------------- bf16 autocast
def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The CPU feature flags the kernel reports (empty where there is no ``/proc/cpuinfo``)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def cpu_bf16_support(flags: set[str] | None = None) -> str | None:
    """The flag that gives this CPU native bf16 (``amx_bf16`` or ``avx512_bf16``), else None.

    Detected, never assumed: the flags come from ``/proc/cpuinfo``; x86 only (other CPUs have not
    been measured and get None)."""
    if flags is None:
        if platform.machine().lower() not in ("x86_64", "amd64"):
            return None
        flags = cpu_flags()
    return next((f for f in CPU_BF16_FLAGS if f in flags), None)


def amp_problem(device: torch.device | str) -> str | None:
    """Why bf16 autocast cannot run on ``device`` (None when it can): CUDA with bf16 support, or a
    CPU with ``amx_bf16`` / ``avx512_bf16``."""
    device = torch.device(device)
    if device.type == "cuda":
        ok = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return None if ok else "this CUDA device has no bf16 support"
    if device.type == "cpu":
        if cpu_bf16_support() is None:
            return (f"this CPU ({platform.machine()}) reports none of the native bf16 flags "
                    f"{', '.join(CPU_BF16_FLAGS)} in /proc/cpuinfo")
        return None
    return f"bf16 autocast is not supported on {device.type!r} (only cuda and bf16 CPUs)"


def autocast(device: torch.device | str, enabled: bool):
    """bf16 autocast on ``device`` when ``enabled``, else a no-op context."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


# ----------------------------------------------------------------------------- CPU threads
def busy_cores(seconds: float = 0.25, stat: str | Path = "/proc/stat") -> float | None:
    """Cores busy over the next ``seconds`` (all processes, from ``/proc/stat``); None if unknown."""
    def sample():
        fields = Path(stat).read_text().splitlines()[0].split()[1:]
        values = [int(v) for v in fields]
        idle = values[3] + (values[4] if len(values) > 4 else 0)          # idle + iowait
        return sum(values[:8]), idle
    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    if total1 <= total0:
        return None
    return (os.cpu_count() or 1) * (1 - (idle1 - idle0) / (total1 - total0))


def machine_load() -> float | None:
    """Busy cores now: the larger of a 0.25 s ``/proc/stat`` sample and the 1-minute load average
    (the sample sees this moment, the average the bursts between test runs that a short sample can
    miss; both count this process's own recent work too, which only errs towards 1 thread)."""
    sample = busy_cores()
    try:
        average = os.getloadavg()[0]
    except OSError:
        average = None
    known = [v for v in (sample, average) if v is not None]
    return max(known) if known else None


def thread_rule(cores: int, workers: int = 1, busy: float | None = None) -> tuple[int, str]:
    """``(threads, why)`` for one of ``workers`` training processes on ``cores`` cores of which
    ``busy`` are taken by other processes (None: unknown, treated as busy)."""
    if workers > 1:
        return 1, f"{workers} workers share {cores} cores: one thread each"
    if cores < 2:
        return 1, "one core"
    if busy is None:
        return 1, "machine load unknown"
    free = int(cores - busy + 0.5)
    if free < cores:
        return 1, f"{busy:.1f} of {cores} cores busy with other processes"
    return cores, f"machine idle ({busy:.1f} of {cores} cores busy), one worker"


def worker_slots() -> int:
    """How many processes of this process's torch thread count fit the cores side by side
    (at least 1): what a study that scores its runs in parallel may start."""
    return max(1, (os.cpu_count() or 1) // max(1, torch.get_num_threads()))


def available_cores() -> int:
    """Cores this process may run on: its CPU affinity (``os.sched_getaffinity``) where the
    platform has one, else ``os.cpu_count()``."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _omp_threads() -> int | None:
    env = os.environ.get("OMP_NUM_THREADS", "")
    return int(env) if env.isdigit() and int(env) >= 1 else None


_PROCESS_THREADS: list[int] = []      # what configure_threads last chose in this process


def configure_threads(threads: int | None = None, workers: int = 1, verbose: bool = True,
                      adaptive: bool = False) -> int:
    """Pick and apply (``torch.set_num_threads``) the intra-op thread count of a process.

    ``threads`` given: that many (at most ``cores // workers``). Else ``OMP_NUM_THREADS`` if set
    (torchrun and the pipeline's kernels set it). Else the cores available to the process (its
    CPU affinity) shared by ``workers``: a lone training uses the machine, as torch does; a sweep
    passes ``threads=1`` to each of its workers (measured faster here, and robust under load).
    ``adaptive=True`` (the bench's thread study) applies :func:`thread_rule` on
    :func:`machine_load` instead. Never more threads than cores in total. A training records the
    count it ran at and a resume or replay reuses it (:func:`training_threads`), so the default
    never changes a run's bits. Prints the choice.
    """
    cores = available_cores()
    for name, value in (("threads", threads), ("workers", workers)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be a positive integer or None; got {value!r}")
    env = _omp_threads()
    cap = max(1, cores // workers)                           # never more threads than cores in total
    if threads is not None:
        n, why = min(threads, cap), f"asked for {threads}" + (f", capped at {cap}" if threads > cap else "")
    elif env is not None:
        n, why = min(env, cap), f"OMP_NUM_THREADS={env}"
    elif adaptive:
        n, why = thread_rule(cores, workers, machine_load())
    else:
        n, why = cap, f"the cores available to this process ({cores}" + (
            f", shared by {workers} workers)" if workers > 1 else ")")
    torch.set_num_threads(n)
    _PROCESS_THREADS[:] = [n]
    if verbose:
        print(f"[galib] torch threads: {n} ({why})", flush=True)
    return n


def training_threads(requested: int | None, recorded: int | None) -> tuple[int, str | None]:
    """``(threads, note)`` a training runs at: ``requested`` (its config's ``threads``) when given,
    else the count its run recorded (a resume or ``--config`` replay: the same bits), else what
    :func:`configure_threads` chose in this process (a sweep worker: 1), else the cores available
    (capped by ``OMP_NUM_THREADS``). ``note`` is one line when a resume changes the recorded count."""
    if requested is not None:
        note = None
        if recorded is not None and recorded != requested:
            note = (f"[galib] resuming at {requested} threads; the run's earlier epochs ran at {recorded}, "
                    f"so its weights will not match an uninterrupted run bit for bit")
        return requested, note
    if recorded is not None:
        return recorded, None
    if _PROCESS_THREADS:
        return _PROCESS_THREADS[0], None
    omp = _omp_threads()
    return min(omp, available_cores()) if omp else available_cores(), None

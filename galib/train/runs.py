"""Run directories: one run per folder, locked, checked, and repaired where that is exact.

A run dir holds ``last.pt`` (the state after the latest epoch: what training resumes from),
``best.pt`` (the epoch with the lowest validation loss) and ``history.json`` (the same config,
data record and per-epoch rows, for people and plots). Every file records the run's identity: its
configuration, the dataset it resolved to (name, sizes, image shape) and a fingerprint of the
training and validation data (``data_fingerprint``; files written before it existed are checked
on the rest). Opening a run dir (:meth:`RunDir.open`):

1. takes an OS lock (``run.lock``, ``flock``): a second writer gets :class:`RunError` naming the
   holder's pid, and a run dir that cannot be written fails here, before any training;
2. deletes temporary files left by a killed write;
3. checks every file against the requested run and against ``last.pt``. What a crash of a healthy
   run can leave behind is completed silently-but-said (``history.json`` missing or behind,
   ``best.pt`` missing or behind when ``last.pt`` holds the best epoch). Anything else is a
   :class:`RunError` naming the file and the choices: ``repair=True`` (``--repair``) rebuilds what
   can be rebuilt exactly (``best.pt`` from ``last.pt``, ``last.pt`` from ``best.pt`` by training the
   later epochs again, ``history.json`` from ``last.pt``), setting damaged files aside as
   ``NAME.damaged``; ``fresh=True`` (``--fresh``) moves the old files to ``previous-N/`` and starts
   over. Nothing already written is deleted.

Files are written in the order ``last.pt``, ``best.pt``, ``history.json``, each atomically.
"""
from __future__ import annotations

import errno
import json
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ..io import FolderLock, FolderLocked, remove_stale_temps, set_aside, write_bytes
from .checkpoints import RESUME_KEYS, CheckpointError, checkpoint_bytes, read_checkpoint
from .config import RESUME_FREE, TrainConfig, config_differences

RUN_FILES = ("last.pt", "best.pt", "history.json")
IDENTITY_DATA = ("dataset", "n_train", "n_val", "image_shape")   # of DataSplits.describe()
MISSING = "missing"


class RunError(ValueError):
    """A run dir that cannot be used as it is (another run's files, partial, damaged, in use or
    not writable); the message names the file and how to repair it."""


@dataclass
class RunState:
    last: dict | None = None          # the checkpoint to resume from (None: a new run)
    best: dict | None = None          # the checkpoint of the best validation epoch
    path: Path | None = None          # the run dir (None: no run dir)


def best_epoch(history: list[dict]) -> dict:
    """The row of the epoch with the lowest validation loss (the first one on ties)."""
    return min(history, key=lambda h: h["val_loss"])


def _same(a, b) -> bool:
    """Equal as JSON (so NaN equals NaN, and a JSON round trip changes nothing)."""
    return json.dumps(a) == json.dumps(b)


def _json_bytes(obj) -> bytes:
    return json.dumps(obj, indent=2, allow_nan=True).encode()


def _fresh_hint(path: Path) -> str:
    return f"--fresh (fresh=True) starts over, moving the old files to {path}/previous-N/"


class RunDir:
    """One run dir, opened for the run ``cfg`` on ``data`` (see the module docstring)."""

    def __init__(self, path, cfg: TrainConfig, data, verbose: bool = True):
        self.path, self.cfg, self.verbose = Path(path), cfg, verbose
        self.data = data.describe()
        self.fingerprint = data.fingerprint()
        self.readonly = False
        self._lock = FolderLock(self.path)

    # ------------------------------------------------------------------ open, close, write
    def open(self, fresh: bool = False, repair: bool = False) -> RunState:
        """Lock the run dir and return what to resume from (repairing or refusing, see above)."""
        self._acquire()
        try:
            if fresh:
                self._start_over()
            if not self.readonly and remove_stale_temps(self.path, RUN_FILES):
                self._note("removed temporary files left by an interrupted write")
            state = self._inspect(repair)
            state.path = self.path
            return state
        except BaseException:
            self.close()
            raise

    def _acquire(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock.acquire()
        except FolderLocked as err:
            raise RunError(f"run dir {self.path} is in use by another training ({err.holder}); wait "
                           f"for it to finish, or use another run dir") from None
        except OSError as err:
            if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS) and \
                    (self.path / "last.pt").is_file():
                self.readonly = True                           # a finished run can still be read
                return
            raise RunError(f"run dir {self.path} cannot be written ({err}); make it writable or "
                           f"choose another run dir") from None

    def close(self) -> None:
        self._lock.release()

    def check_writable(self) -> None:
        """Raise :class:`RunError` if this run must train on but its dir is read-only."""
        if self.readonly:
            raise RunError(f"run dir {self.path} is not writable, so training cannot continue "
                           f"there; make it writable or choose another run dir")

    def _write(self, name: str, data, why: str | None = None) -> None:
        if self.readonly:
            raise RunError(f"{self.path / name} needs rewriting ({why}), but run dir {self.path} is "
                           f"not writable; make it writable or copy the run elsewhere")
        write_bytes(self.path / name, data)
        if why:
            self._note(why)

    def _copy(self, src: str, dst: str, why: str) -> None:
        self._write(dst, (self.path / src).read_bytes(), why)

    def _set_aside(self, name: str) -> None:
        self._note(f"set {name} aside as {set_aside(self.path / name, 'damaged').name}")

    def _note(self, text: str) -> None:
        if self.verbose:
            print(f"[galib] {self.path}: {text}")

    def _start_over(self) -> None:
        present = [n for n in RUN_FILES if (self.path / n).exists()]
        if not present:
            return
        self.check_writable()
        n = 1
        while (self.path / f"previous-{n}").exists():
            n += 1
        target = self.path / f"previous-{n}"
        target.mkdir()
        for name in present:
            os.replace(self.path / name, target / name)
        self._note(f"fresh start: moved {', '.join(present)} to {target}")

    def save(self, cfg: TrainConfig, model, optimizer, epoch: int, history: list[dict],
             best_val: float, improved: bool) -> None:
        """Write the state after ``epoch``: ``last.pt``, then ``best.pt`` if it improved, then
        ``history.json``."""
        state = {"config": asdict(cfg), "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "epoch": epoch, "history": history, "best_val": best_val,
                 "image_shape": list(self.data["image_shape"]), "data": self.data,
                 "data_fingerprint": self.fingerprint}
        blob = checkpoint_bytes(state)
        self._write("last.pt", blob)
        if improved:
            self._write("best.pt", blob)
        self._write("history.json", _json_bytes(_history_record(state)))

    # ------------------------------------------------------------------ checks
    def differences(self, record: dict) -> list[str]:
        """How the run recorded in ``record`` (a checkpoint or history.json) differs from this one."""
        config, data = record.get("config"), record.get("data")
        if not isinstance(config, dict) or not isinstance(data, dict):
            return ["it records no configuration or data"]
        keys = [f.name for f in fields(TrainConfig) if f.name not in RESUME_FREE]
        diffs = config_differences(config, self.cfg, keys)
        diffs += [f"data {k}: run {data.get(k)!r} vs now {self.data[k]!r}" for k in IDENTITY_DATA
                  if data.get(k) != self.data[k]]
        fp = record.get("data_fingerprint")
        if not diffs and fp is not None and fp != self.fingerprint:
            diffs.append(f"data content: fingerprint {fp[:12]} in the run vs {self.fingerprint[:12]} "
                         f"now (same dataset name and sizes, other images or labels)")
        return diffs

    def _check_identity(self, record: dict, path: Path) -> None:
        diffs = self.differences(record)
        if diffs:
            raise RunError(f"{path} belongs to another run ({'; '.join(diffs)}). A run dir holds one "
                           f"run: ask for that run's settings, use another run dir, or "
                           f"{_fresh_hint(self.path)}")

    def _read(self, name: str) -> tuple[dict | None, str | None]:
        """``(checkpoint, None)``, or ``(None, why not)``; another run's file is a RunError."""
        path = self.path / name
        if not path.exists():
            return None, MISSING
        try:
            ckpt = read_checkpoint(path, RESUME_KEYS)
        except CheckpointError as err:
            return None, err.problem
        self._check_identity(ckpt, path)
        return ckpt, None

    def _inspect(self, repair: bool) -> RunState:
        last, last_problem = self._read("last.pt")
        best, best_problem = self._read("best.pt")
        if last is not None and best is not None and best["epoch"] == last["epoch"] + 1 \
                and _same(best["history"][:-1], last["history"]):
            self._copy("best.pt", "last.pt", "last.pt was one epoch behind best.pt (a save was "
                       "interrupted): copied best.pt to last.pt")
            last = best
        if last is None:
            last = self._recover_last(last_problem, best, best_problem, repair)
            if last is None:
                return RunState()
        best = self._check_best(last, best, best_problem, repair)
        self._check_history(last, repair)
        return RunState(last, best)

    def _recover_last(self, last_problem, best, best_problem, repair) -> dict | None:
        """``last.pt`` is missing or damaged: nothing to resume (None), rebuilt from best.pt, or
        a RunError."""
        if best is None:
            if last_problem == MISSING and best_problem == MISSING:
                if (self.path / "history.json").exists():
                    raise RunError(f"{self.path / 'history.json'} is there but neither last.pt nor "
                                   f"best.pt, so the run cannot be resumed or loaded; "
                                   f"{_fresh_hint(self.path)}")
                return None
            raise RunError(f"run dir {self.path} holds no usable checkpoint (last.pt: {last_problem}; "
                           f"best.pt: {best_problem}); {_fresh_hint(self.path)}")
        damaged = last_problem != MISSING
        if not repair:
            raise RunError(
                f"{self.path / 'last.pt'} is {f'damaged ({last_problem})' if damaged else 'missing'}, "
                f"so this run cannot be resumed or loaded as it is; best.pt (epoch {best['epoch'] + 1}) "
                f"is intact. Choose: --repair (repair=True) resumes from best.pt and trains the later "
                f"epochs again (deterministic: the same result)"
                f"{', setting the damaged file aside' if damaged else ''}; or {_fresh_hint(self.path)}")
        if damaged:
            self._set_aside("last.pt")
        self._copy("best.pt", "last.pt", f"repair: last.pt rebuilt from best.pt (epoch "
                   f"{best['epoch'] + 1}); training resumes from there")
        return best

    def _check_best(self, last: dict, best, best_problem, repair) -> dict:
        """The checkpoint of the best epoch of ``last``'s history, rebuilt from last.pt if it is
        that epoch; a RunError if it cannot be had."""
        hist = last["history"]
        diverged = [r["epoch"] for r in hist if not math.isfinite(r["val_loss"])]
        if diverged:
            raise RunError(f"{self.path / 'last.pt'} records a non-finite validation loss at epoch "
                           f"{diverged[0]}: the run diverged; {_fresh_hint(self.path)} (with a "
                           f"smaller lr or loss weights)")
        want = best_epoch(hist)["epoch"] - 1
        if best is not None and best["epoch"] == want and _same(best["history"], hist[:want + 1]):
            return best
        if best is None:
            state, auto = (MISSING, True) if best_problem == MISSING else (f"damaged ({best_problem})", False)
        elif best["epoch"] < want and _same(best["history"], hist[:best["epoch"] + 1]):
            state, auto = f"behind (epoch {best['epoch'] + 1}; a save was interrupted)", True
        else:
            state, auto = (f"not the best epoch of last.pt's history (best.pt: epoch {best['epoch'] + 1}"
                           f", history: epoch {want + 1})"), False
        if want != last["epoch"]:
            raise RunError(f"{self.path / 'best.pt'} is {state}, and the best epoch ({want + 1}) is "
                           f"kept nowhere else (last.pt is epoch {last['epoch'] + 1}), so its weights "
                           f"cannot be rebuilt; {_fresh_hint(self.path)}")
        if not (auto or repair):
            raise RunError(f"{self.path / 'best.pt'} is {state}. Choose: --repair (repair=True) "
                           f"rebuilds it from last.pt, which holds the best epoch ({want + 1}), setting "
                           f"the old file aside; or {_fresh_hint(self.path)}")
        if not auto:
            self._set_aside("best.pt")
        self._copy("last.pt", "best.pt", f"best.pt was {state}: rebuilt from last.pt (epoch {want + 1})")
        return last

    def _check_history(self, last: dict, repair: bool) -> None:
        """Make history.json agree with last.pt: rebuilt if missing, unreadable or behind; a
        RunError (or, with ``repair``, rebuilt) if it holds another run's rows."""
        path = self.path / "history.json"
        saved, problem = _read_history(path)
        if saved is not None:
            diffs = self.differences(saved)
            rows, have = last["history"], saved["history"]
            if not diffs and _same(have, rows):
                return
            if not diffs and _same(have, rows[:len(have)]):
                problem = f"{len(rows) - len(have)} epoch(s) behind last.pt"
            elif not repair:
                raise RunError(f"{path} does not match last.pt ({'; '.join(diffs) or 'other epochs'}): "
                               f"the run dir mixes two runs. Choose: --repair (repair=True) rewrites it "
                               f"from last.pt, setting the old file aside; or {_fresh_hint(self.path)}")
            else:
                problem = "from another run"
                self._set_aside("history.json")
        elif problem != MISSING:
            self._set_aside("history.json")
        self._write("history.json", _json_bytes(_history_record(last)),
                    f"history.json was {problem}: rebuilt from last.pt")


def _history_record(ckpt: dict) -> dict:
    """What history.json holds for the state ``ckpt``."""
    keep = ("config", "data", "data_fingerprint")
    return {**{k: ckpt[k] for k in keep if k in ckpt}, "history": ckpt["history"]}


def _read_history(path: Path) -> tuple[dict | None, str | None]:
    if not path.exists():
        return None, MISSING
    try:
        saved = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError, OSError) as err:
        return None, f"unreadable ({type(err).__name__}: {err})"
    if not isinstance(saved, dict) or not isinstance(saved.get("history"), list):
        return None, "not a galib history (no 'history' list)"
    return saved, None


def read_state(path: Path) -> RunState:
    """The checkpoints of a run dir another process has opened and checked (DDP ranks > 0)."""
    path = Path(path)
    last = read_checkpoint(path / "last.pt", RESUME_KEYS) if (path / "last.pt").exists() else None
    best = read_checkpoint(path / "best.pt", RESUME_KEYS) if last is not None else None
    return RunState(last, best, path)


def history_up_to(state: RunState, epochs: int, path: Path, verbose: bool) -> list[dict]:
    """The first ``epochs`` rows of a longer finished run, if its best epoch among them is the one
    ``best.pt`` keeps; else a RunError (the weights asked for are not kept)."""
    rows = state.last["history"]
    want = best_epoch(rows[:epochs])["epoch"] - 1
    if want != state.best["epoch"]:
        raise RunError(f"run dir {path} holds {len(rows)} epochs, more than the {epochs} asked for, "
                       f"and the best of the first {epochs} (epoch {want + 1}) is not kept (best.pt is "
                       f"epoch {state.best['epoch'] + 1}); ask for epochs={len(rows)} to use this run, "
                       f"or use another run dir to train {epochs} epochs")
    if verbose:
        print(f"[galib] {path} holds {len(rows)} epochs; epochs={epochs}: returning the best of the "
              f"first {epochs} (epoch {want + 1}, kept in best.pt)")
    return rows[:epochs]

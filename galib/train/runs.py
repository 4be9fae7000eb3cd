"""Run directories: one run per folder, locked, checked, and repaired where that is exact.

A run dir holds ``last.pt`` (the state after the latest epoch: what training resumes from),
``best.pt`` (the epoch with the lowest validation loss) and ``history.json`` (the same config,
data record and per-epoch rows, for people and plots). Every file records the run's identity: its
configuration, the dataset it resolved to (name, sizes, image shape) and a fingerprint of the
training and validation data (``data_fingerprint``; files written before it existed are checked
on the rest). Opening a run dir (:meth:`RunDir.open`):

1. takes a *shared* OS lock (``run.lock``, ``flock``), so that any number of processes (notebooks,
   sweep workers) read one finished run at once. While a training or repair holds the exclusive
   lock, a reader is refused at once with a :class:`RunError` naming the holder's pid (it does not
   wait: the run is changing);
2. checks every file against the requested run and against ``last.pt``, changing nothing. A
   finished run that needs no change is returned under the shared lock. Otherwise (training to do,
   a file to complete or repair, temporary files left by a killed write) the shared lock is
   released and the exclusive one taken (waiting up to ``LOCK_WAIT_S`` seconds for readers to
   leave; a writer holding it is a RunError naming its pid, so two readers that both need to
   write never wait for each other), and the files are checked again, since they may have changed;
3. deletes temporary files left by a killed write, then completes or repairs the files as planned.
   What a crash of a healthy run can leave behind is completed silently-but-said (``history.json``
   missing or behind, ``best.pt`` missing or behind when ``last.pt`` holds the best epoch,
   ``best.pt`` one epoch ahead of ``last.pt`` as the older write order left it: the best of its
   own history, with no later epoch in ``history.json``). A ``history.json``
   ahead of ``last.pt`` with the same rows (its newest epochs' checkpoint was lost) is kept: training
   those epochs again rewrites the same rows. Anything else is a :class:`RunError` naming the file
   and the choices, and **no file is changed**: ``repair=True`` (``--repair``) rebuilds what can be
   rebuilt exactly (``best.pt`` from ``last.pt``, in place of a damaged one or another run's;
   ``last.pt`` from a newer or intact ``best.pt`` by
   training the later epochs again; ``last.pt`` and ``best.pt`` swapped back; ``history.json`` from
   ``last.pt``), setting the files it replaces aside as ``NAME.damaged`` instead of overwriting
   them; ``fresh=True`` (``--fresh``) moves the old files to ``previous-N/`` and starts over.
   Nothing already written is deleted.

Files are written in the order ``last.pt``, ``best.pt``, ``history.json``, each atomically.
:func:`run_status` makes the same checks without a lock and without loading the data (the
sweep's "finished": every file verified, not history.json's rows counted).
"""
from __future__ import annotations

import errno
import json
import math
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from ..io import FolderLock, FolderLocked, remove_stale_temps, set_aside, write_bytes
from .checkpoints import RESUME_KEYS, CheckpointError, checkpoint_bytes, config_of, read_checkpoint
from .config import RESUME_FREE, TrainConfig, config_differences

RUN_FILES = ("last.pt", "best.pt", "history.json")
IDENTITY_DATA = ("dataset", "n_train", "n_val", "image_shape")   # of DataSplits.describe()
MISSING = "missing"
OTHER_RUN = "another run's file"     # a best.pt of other settings: rebuilt from last.pt where it can be
LOCK_WAIT_S = 30.0            # how long a writer waits for readers of the run dir to leave


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


def _damage(problem: str) -> str:
    """What a file with ``problem`` is called in a message: ``another run's file (…)`` as it is,
    anything else ``damaged (…)``."""
    return problem if problem.startswith(OTHER_RUN) else f"damaged ({problem})"


def _own_best(ckpt: dict) -> int:
    """The 0-based epoch of the best row of ``ckpt``'s history."""
    return best_epoch(ckpt["history"])["epoch"] - 1


class RunDir:
    """One run dir, opened for the run ``cfg`` on ``data`` (see the module docstring)."""

    def __init__(self, path, cfg: TrainConfig, data, verbose: bool = True):
        self.path, self.cfg, self.verbose = Path(path), cfg, verbose
        self.data = data.describe()
        self.fingerprint = data.fingerprint()
        self.readonly = False
        self._lock = FolderLock(self.path)
        self._plan: list[tuple[bool, object]] = []            # (writes a file, action)

    # ------------------------------------------------------------------ open, close, write
    def open(self, fresh: bool = False, repair: bool = False) -> RunState:
        """Lock the run dir and return what to resume from (repairing or refusing, see above):
        under the shared lock if the run is finished and needs no change, else the exclusive one."""
        self._acquire(shared=not fresh)
        try:
            if not fresh and not self.readonly:
                state = self._inspect(repair)
                if self._finished(state):
                    return self._carry_out(state)
                self._exclusive()
            if fresh:
                self._start_over()
            if not self.readonly and remove_stale_temps(self.path, RUN_FILES):
                self._note("removed temporary files left by an interrupted write")
            return self._carry_out(self._inspect(repair))
        except BaseException:
            self.close()
            raise

    def _finished(self, state: RunState) -> bool:
        """Nothing to write: the run has all the epochs asked for, and every file is as it should be."""
        return (state.last is not None and self.cfg.epochs <= state.last["epoch"] + 1
                and not any(writes for writes, _ in self._plan)
                and not any(any(self.path.glob(f".{n}.*.tmp")) for n in RUN_FILES))

    def _carry_out(self, state: RunState) -> RunState:
        plan, self._plan = self._plan, []
        for _, action in plan:
            action()
        state.path = self.path
        return state

    def _acquire(self, shared: bool) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise RunError(f"run dir {self.path} is a file, not a folder; pass a folder (new, or "
                           f"holding a run) as the run dir")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock.acquire(shared=shared, wait_s=0.0 if shared else LOCK_WAIT_S)
        except FolderLocked as err:
            raise self._locked_error(err) from None
        except OSError as err:
            if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS) and \
                    (self.path / "last.pt").is_file():
                self.readonly = True                           # a finished run can still be read
                return
            raise RunError(f"run dir {self.path} cannot be written ({err}); make it writable or "
                           f"choose another run dir") from None

    def _exclusive(self) -> None:
        """Trade the shared lock for the exclusive one (then the caller checks the files again)."""
        try:
            self._lock.upgrade(wait_s=LOCK_WAIT_S)
        except FolderLocked as err:
            raise self._locked_error(err) from None

    def _locked_error(self, err: FolderLocked) -> RunError:
        if err.writer:
            return RunError(f"run dir {self.path} is in use by another training ({err.holder}); "
                            f"wait for it to finish, or use another run dir")
        return RunError(f"run dir {self.path} must be written (to train or complete its files), but "
                        f"other processes kept reading it for {LOCK_WAIT_S:g} s; try again when "
                        f"they are done")

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

    # planned while checking, carried out by _carry_out (so a refusal changes no file)
    def _copy(self, src: str, dst: str, why: str) -> None:
        self._plan.append((True, lambda: self._write(dst, (self.path / src).read_bytes(), why)))

    def _set_aside(self, name: str) -> None:
        self._plan.append((True, lambda: self._put_aside(name)))

    def _say(self, text: str) -> None:
        self._plan.append((False, lambda: self._note(text)))

    def _put_aside(self, name: str) -> Path:
        if self.readonly:
            raise RunError(f"{self.path / name} must be set aside, but run dir {self.path} is not "
                           f"writable; make it writable or copy the run elsewhere")
        target = set_aside(self.path / name, "damaged")
        self._note(f"set {name} aside as {target.name}")
        return target

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

    def _read(self, name: str, other_ok: bool = False) -> tuple[dict | None, str | None]:
        """``(checkpoint, None)``, or ``(None, why not)``; another run's file is a RunError, or
        with ``other_ok`` the problem ``OTHER_RUN (…)`` (a best.pt that last.pt may rebuild)."""
        path = self.path / name
        if not path.exists():
            return None, MISSING
        try:
            ckpt = read_checkpoint(path, RESUME_KEYS)
        except CheckpointError as err:
            return None, err.problem
        diffs = self.differences(ckpt) if other_ok else []
        if diffs:
            return None, f"{OTHER_RUN} ({'; '.join(diffs)})"
        self._check_identity(ckpt, path)
        return ckpt, None

    def _inspect(self, repair: bool) -> RunState:
        """Check the files and plan what to complete or repair (nothing is written here)."""
        self._plan = []
        last, last_problem = self._read("last.pt")
        best, best_problem = self._read("best.pt", other_ok=last is not None)
        if last is not None and best is not None and best["epoch"] > last["epoch"]:
            last, best = self._newer_best(last, best, repair)
        if last is None:
            last = self._recover_last(last_problem, best, best_problem, repair)
            if last is None:
                return RunState()
        best = self._check_best(last, best, best_problem, repair)
        self._check_history(last, repair)
        return RunState(last, best)

    def _newer_best(self, last: dict, best: dict, repair: bool) -> tuple[dict, dict]:
        """``best.pt`` holds a later epoch than ``last.pt``: ``(checkpoint to resume from, best
        checkpoint)`` once completed (a cut save of the older write order) or repaired (swapped
        files, a stale last.pt), else a RunError that changes nothing."""
        a, b = last["epoch"] + 1, best["epoch"] + 1
        names = f"{self.path / 'last.pt'} (epoch {a}) and best.pt (epoch {b})"
        if not _same(best["history"][:a], last["history"]):
            raise RunError(f"{names} are not one run: best.pt is the later epoch, but their first "
                           f"{a} epochs differ (files of two trainings with the same settings?); "
                           f"nothing was changed. Move the files you want to keep elsewhere, then "
                           f"{_fresh_hint(self.path)}")
        want = _own_best(best) + 1                             # the best epoch of best.pt's history
        if b == a + 1 and want == b and self._history_rows() <= b:
            self._copy("best.pt", "last.pt", "last.pt was one epoch behind best.pt (a save was "
                       "interrupted): copied best.pt to last.pt")
            return best, best
        if want == a:
            what, fix = (f"are swapped: last.pt holds epoch {a}, the best of the run's {b} epochs, and "
                         f"best.pt the newer state", "swaps them back")
        elif want == b:
            what, fix = ("do not fit: last.pt is an older state of the same run (an old copy put "
                         "back?), best.pt the newer one", f"resumes from best.pt (epoch {b}) and "
                         f"trains the later epochs again (deterministic: the same result)")
        else:
            raise RunError(f"{names} do not fit, and the best epoch of the run ({want}) is kept in "
                           f"neither, so its weights cannot be rebuilt; nothing was changed. "
                           f"{_fresh_hint(self.path)}")
        if not repair:
            raise RunError(f"{names} {what}; nothing was changed. Choose: --repair (repair=True) "
                           f"{fix}, setting the replaced file aside as NAME.damaged; or "
                           f"{_fresh_hint(self.path)}")
        if want == a:
            self._plan.append((True, self._swap_back))
            return best, last
        self._set_aside("last.pt")
        self._copy("best.pt", "last.pt", f"repair: last.pt rebuilt from best.pt (epoch {b}); "
                   f"training resumes from there")
        return best, best

    def _history_rows(self) -> int:
        """How many epochs history.json records, if it is readable and of this run (else 0). A cut
        save never leaves it ahead of both checkpoints."""
        saved, _ = _read_history(self.path / "history.json")
        return len(saved["history"]) if saved is not None and not self.differences(saved) else 0

    def _swap_back(self) -> None:
        """last.pt ↔ best.pt, so that every state is in a named file at every moment."""
        aside = self._put_aside("best.pt")                     # the newer state
        self._write("best.pt", (self.path / "last.pt").read_bytes())
        self._write("last.pt", aside.read_bytes(), f"repair: swapped last.pt and best.pt back "
                    f"({aside.name} is a copy of the new last.pt)")

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
            state, auto = (MISSING, True) if best_problem == MISSING else (_damage(best_problem), False)
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
        """Plan to make history.json agree with last.pt: rebuilt if missing, unreadable or behind;
        kept if ahead with the same rows; a RunError (or, with ``repair``, rebuilt) if it holds
        another run's rows."""
        path = self.path / "history.json"
        saved, problem = _read_history(path)
        if saved is not None:
            diffs = self.differences(saved)
            rows, have = last["history"], saved["history"]
            if not diffs and _same(have, rows):
                return
            if not diffs and len(have) > len(rows) and _same(have[:len(rows)], rows):
                self._say(f"history.json is {len(have) - len(rows)} epoch(s) ahead of last.pt (their "
                          f"checkpoint was lost): kept; training them again rewrites the same rows")
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
        record = _json_bytes(_history_record(last))
        self._plan.append((True, lambda: self._write("history.json", record,
                                                     f"history.json was {problem}: rebuilt from last.pt")))


def _history_record(ckpt: dict) -> dict:
    """What history.json holds for the state ``ckpt``."""
    keep = ("config", "data", "data_fingerprint")
    return {**{k: ckpt[k] for k in keep if k in ckpt}, "history": ckpt["history"]}


def _read_history(path: Path) -> tuple[dict | None, str | None]:
    if not path.exists():
        return None, MISSING
    if path.is_dir():
        return None, "a folder, not a file"
    try:
        saved = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError, OSError) as err:
        return None, f"unreadable ({type(err).__name__}: {err})"
    if not isinstance(saved, dict) or not isinstance(saved.get("history"), list):
        return None, "not a galib history (no 'history' list)"
    return saved, None


class _Recorded:
    """The data identity a run's own files record, standing in for the data: the files are checked
    against each other and the config without loading the dataset."""

    def __init__(self, record: dict):
        data = record.get("data") if isinstance(record.get("data"), dict) else {}
        self._data = {k: data.get(k) for k in IDENTITY_DATA}
        self._fingerprint = record.get("data_fingerprint") or ""

    def describe(self) -> dict:
        return dict(self._data)

    def fingerprint(self) -> str:
        return self._fingerprint


def _a_record(path: Path) -> dict | None:
    """The first readable record of the run in ``path``: last.pt, best.pt, history.json."""
    for name in ("last.pt", "best.pt"):
        try:
            return read_checkpoint(path / name, RESUME_KEYS)
        except (CheckpointError, FileNotFoundError):
            pass
    saved, _ = _read_history(path / "history.json")
    return saved if saved is not None and isinstance(saved.get("config"), dict) else None


def run_status(path: str | Path, cfg: TrainConfig | None = None, epochs: int | None = None,
               free: tuple[str, ...] = ()) -> tuple[str, str]:
    """``(status, why)`` of run dir ``path`` for the run ``cfg`` (None: the one its files record)
    of ``epochs`` epochs (None: ``cfg.epochs``), checked as :meth:`RunDir.open` checks it, but
    without a lock and without loading the data (whose identity is the one the files record).
    ``free``: config fields taken from the run's files (those derived from another run). Status:
    ``finished`` (it opens as it is), ``new`` (no run files), ``unfinished`` (epochs to train),
    ``incomplete`` (every epoch, but opening it completes a file: best.pt or history.json behind,
    temporary files), ``damaged`` (opening it is a RunError: ``why`` is its message)."""
    path = Path(path)
    if not any((path / n).exists() for n in RUN_FILES):
        return "new", "no run files"
    record = _a_record(path)
    if record is None:
        return "damaged", (f"run dir {path} holds no readable last.pt, best.pt or history.json; "
                           f"{_fresh_hint(path)}")
    try:
        own = config_of(record, path)
    except CheckpointError as err:
        return "damaged", str(err)
    cfg = own if cfg is None else replace(cfg, **{k: getattr(own, k) for k in free})
    run = RunDir(path, replace(cfg, epochs=cfg.epochs if epochs is None else epochs),
                 _Recorded(record), verbose=False)
    try:
        state = run._inspect(repair=False)
    except RunError as err:
        return "damaged", str(err)
    if run._finished(state):
        return "finished", f"{state.last['epoch'] + 1} epochs, every file verified"
    done = 0 if state.last is None else state.last["epoch"] + 1
    if done >= run.cfg.epochs:
        return "incomplete", f"{done} epochs; files to complete from last.pt (done when it is opened)"
    return "unfinished", f"{done} of {run.cfg.epochs} epochs"


def read_state(path: Path) -> RunState:
    """The checkpoints of a run dir another process has opened and checked (DDP ranks > 0)."""
    path = Path(path)
    last = read_checkpoint(path / "last.pt", RESUME_KEYS) if (path / "last.pt").exists() else None
    best = read_checkpoint(path / "best.pt", RESUME_KEYS) if last is not None else None
    return RunState(last, best, path)


def history_up_to(state: RunState, epochs: int, path: Path, verbose: bool) -> list[dict]:
    """The history to return when a finished run holds more epochs than the ``epochs`` asked for
    (say it was extended to 400 epochs and a notebook asks for 5): its first ``epochs`` rows if
    ``best.pt`` keeps their best epoch (the model asked for); else the whole run as it is, whose
    best epoch ``best.pt`` keeps, said in a note (the weights of the shorter run are not kept; to
    train ``epochs`` epochs, use another run dir or ``fresh=True``). Either way ``best.pt`` holds
    the model of the returned rows' best epoch."""
    rows = state.last["history"]
    want = best_epoch(rows[:epochs])["epoch"] - 1
    if want == state.best["epoch"]:
        if verbose:
            print(f"[galib] {path} holds {len(rows)} epochs; epochs={epochs}: returning the best of "
                  f"the first {epochs} (epoch {want + 1}, kept in best.pt)")
        return rows[:epochs]
    if verbose:
        print(f"[galib] {path} holds {len(rows)} epochs, more than the {epochs} asked for, and the "
              f"best of the first {epochs} (epoch {want + 1}) is not kept: returning the run as it is "
              f"(all {len(rows)} epochs, best epoch {state.best['epoch'] + 1}). To train {epochs} "
              f"epochs, use another run dir or --fresh (fresh=True)")
    return rows

"""Files: durable atomic writes (checkpoints, metrics, tables and figures are never left
half-written, and survive a power cut once written), JSON that holds tensors and numpy values,
stale temporary files, and a per-folder lock: one writer, or any number of readers.

A write goes to a temporary file ``.NAME.XXXX.tmp`` beside its target, is flushed to disk
(``fsync``), renamed onto the target, and the folder entry is flushed too. A write that fails
(disk full, permission) raises :class:`WriteError` naming the path and the cause, and leaves the
old file as it was. A process killed mid-write leaves only its temporary file, which
:func:`remove_stale_temps` deletes later.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

_LOW_SPACE = 1 << 20          # a failed write with less free space than this is reported as disk full


class WriteError(OSError):
    """A file could not be written; the message names the path and says why (disk full, ...)."""


class FolderLocked(RuntimeError):
    """Another process holds the lock of a folder: a writer (``writer``; the message and ``holder``
    name its pid) or, for an exclusive lock, readers."""
    holder: str = ""
    writer: bool = True


def _write_error(path: Path, err: BaseException) -> WriteError:
    reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
    code = err.errno if isinstance(err, OSError) else None
    try:
        free = shutil.disk_usage(path.parent if path.parent.exists() else Path.cwd()).free
    except OSError:
        free = None
    if code in (errno.ENOSPC, errno.EDQUOT) or (free is not None and free < _LOW_SPACE):
        reason = (f"no space left on the device ({free} bytes free): free some space or write "
                  f"elsewhere; the previous {path.name}, if any, is unchanged")
        code = errno.ENOSPC
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS):
        reason += ": the folder is not writable; fix its permissions or write elsewhere"
    out = WriteError(f"cannot write {path}: {reason}")
    out.errno = code
    return out


def _fsync(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)``, flush it to disk, then rename it onto ``path``: readers never see
    a partial file, and a failure leaves the old one untouched (:class:`WriteError` on OS errors)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
    except OSError as err:
        raise _write_error(path, err) from None
    umask = os.umask(0)
    os.umask(umask)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~umask)                          # mkstemp makes 0600 files
        _fsync(Path(tmp))
        os.replace(tmp, path)
        _fsync(path.parent, directory=True)
    except BaseException as err:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(err, OSError) and not isinstance(err, WriteError):
            raise _write_error(path, err) from None
        raise


def write_bytes(path: Path, data: bytes | memoryview) -> Path:
    """``data`` into ``path``, atomically and durably."""
    def put(tmp):
        with open(tmp, "wb") as f:
            f.write(data)
    atomic_write(path, put)
    return Path(path)


def write_text(path: Path, text: str) -> Path:
    """``text`` into ``path``, atomically."""
    atomic_write(path, lambda p: Path(p).write_text(text))
    return Path(path)


def remove_stale_temps(folder: Path, names) -> list[Path]:
    """Delete the temporary files ``.NAME.*.tmp`` that an interrupted :func:`atomic_write` of one
    of ``names`` left in ``folder`` (call it only while no other process writes there)."""
    removed = []
    for name in names:
        for tmp in Path(folder).glob(f".{name}.*.tmp"):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def set_aside(path: Path, tag: str) -> Path:
    """Rename ``path`` to ``path.TAG`` (``path.TAG-2``, ... if taken) so that nothing is lost."""
    path = Path(path)
    target, n = path.with_name(f"{path.name}.{tag}"), 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.{tag}-{n}")
    os.replace(path, target)
    return target


class FolderLock:
    """A ``flock`` on ``folder/NAME``: exclusive (one writer) or shared (any number of readers, no
    writer). The kernel drops it when the process dies (even by SIGKILL), so a crash never leaves a
    folder locked. The exclusive holder writes its pid, host and start time into the file and
    removes it on release; the last shared holder to leave removes it too (a stale one is harmless).

    A shared lock is never converted in place: :meth:`upgrade` releases it and then takes the
    exclusive one, so two readers that both upgrade cannot wait for each other (one gets it, the
    other is told who holds it); the caller must check the folder again after an upgrade.
    """

    def __init__(self, folder: Path, name: str = "run.lock"):
        self.path = Path(folder) / name
        self._fd: int | None = None
        self.shared = False

    def acquire(self, shared: bool = False, wait_s: float = 0.0) -> "FolderLock":
        """Take the lock; :class:`FolderLocked` if a writer holds it (at once) or, for the exclusive
        lock, if readers still hold it after ``wait_s`` seconds."""
        deadline, delay = time.monotonic() + wait_s, 0.005
        while True:
            try:
                return self._try(shared)
            except FolderLocked as err:
                if err.writer or time.monotonic() >= deadline:
                    raise
            time.sleep(delay)                                  # readers hold it briefly
            delay = min(2 * delay, 0.2)

    def upgrade(self, wait_s: float = 30.0) -> "FolderLock":
        """Exchange a shared lock for the exclusive one (released first; see the class doc)."""
        self.release()
        return self.acquire(shared=False, wait_s=wait_s)

    def _try(self, shared: bool) -> "FolderLock":
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as err:
                raise _write_error(self.path, err) from None
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            except BlockingIOError:
                raise self._locked(fd) from None
            if self._same_file(fd):                            # not unlinked by a releasing holder
                break
            os.close(fd)
        if not shared:
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()} on {socket.gethostname()} since "
                         f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
        self._fd, self.shared = fd, shared
        return self

    def _locked(self, fd: int) -> FolderLocked:
        """The error for a lock we could not take on ``fd`` (closed here): held by a writer
        (``writer=True``, naming its pid) or only by readers."""
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)     # granted: only readers hold it
            writer = False
        except BlockingIOError:
            writer = True
        holder = os.read(fd, 200).decode(errors="replace").strip() if writer else ""
        os.close(fd)
        if writer:
            err = FolderLocked(f"{self.path.parent} is in use by another process "
                               f"({holder or 'pid unknown'}); wait for it to finish, or use another "
                               f"folder")
        else:
            err = FolderLocked(f"{self.path.parent} is being read by other processes (shared "
                               f"locks); try again when they are done")
        err.holder, err.writer = holder or "pid unknown", writer
        return err

    def _same_file(self, fd: int) -> bool:
        try:
            return os.stat(self.path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False

    def release(self) -> None:
        if self._fd is None:
            return
        if self.shared:                                        # the last reader out removes it
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                last = self._same_file(self._fd)
            except BlockingIOError:
                last = False
        else:
            last = True
        if last:
            self.path.unlink(missing_ok=True)                  # while still holding the lock
        os.close(self._fd)
        self._fd, self.shared = None, False

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def jsonable(obj):
    """Tensors, numpy scalars/arrays, tuples and Paths → plain JSON types (nan stays nan)."""
    if isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def save_json(obj, path: Path) -> None:
    atomic_write(path, lambda p: Path(p).write_text(json.dumps(obj, indent=2, allow_nan=True)))

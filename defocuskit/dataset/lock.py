"""The dataset lock: one writer, or any number of readers, per local dataset.

The lock is a file beside the dataset, ``.NAME.defocuskit-lock``, where NAME is the last
component of the dataset's real path (symbolic links resolved, so ``--output .`` and a
link to a dataset lock the folder they name). ``defocuskit synth`` holds it exclusively
(``flock``); readers (``trainer fit``, ``trainer eval``, every
:class:`~trainer.data.DefocusDataset`) hold it shared, so a ``synth --overwrite`` or
``--resume`` is refused while a reader has the dataset open, and a reader is refused
while synth writes it.

What the lock never does to a file it did not make:

- A new lock file is written whole under a unique temporary name and put in place with
  ``link(2)``, which fails on anything already at the lock path and never follows a link
  there (``O_CREAT | O_EXCL`` semantics; file systems without hard links fall back to
  ``O_CREAT | O_EXCL | O_NOFOLLOW``).
- An existing file at the lock path is used only if it is a regular file (opened with
  ``O_NOFOLLOW``: a symbolic link is refused, never written through) whose content
  starts with :data:`MAGIC`, i.e. the lock of an earlier run that was killed. Anything
  else there is refused with a message naming it, unread beyond its first bytes and
  unchanged.
- On release the file is removed only while the lock path still names the very file
  this process locked (same device and inode), and a reader removes it only when no
  other reader holds it.

A reader that cannot make or open a lock (a read-only folder, a foreign file in the
way) reads without one: only a writer at work stops it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import stat
import time
import weakref
from pathlib import Path

from defocuskit.errors import ConfigError

__all__ = ["MAGIC", "LOCK_SUFFIX", "lock_path", "real_path", "writer_lock", "ReaderLock",
           "reader_lock"]

MAGIC = b"defocuskit dataset lock\n"
LOCK_SUFFIX = ".defocuskit-lock"
_RETRIES = 20       # a holder releasing at the same moment: look again this many times
_RETRY_S = 0.025


def _is_remote(path) -> bool:
    s = os.fspath(path)
    return "://" in s and not s.startswith("file://")


def real_path(path) -> Path:
    """The absolute path with symbolic links resolved (``.`` becomes the folder's name)."""
    s = os.fspath(path)
    return Path(os.path.realpath(s[len("file://"):] if s.startswith("file://") else s))


def lock_path(path) -> Path:
    """Where the lock of the dataset at ``path`` lives (beside its real path)."""
    p = real_path(path)
    if not p.name:
        raise ConfigError(f"output {path}: the file system root cannot hold a dataset; "
                          "choose a folder below it")
    return p.parent / f".{p.name}{LOCK_SUFFIX}"


def _same_file(lock: Path, fd: int) -> bool:
    try:
        st = os.lstat(lock)
    except OSError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def _create(lock: Path) -> int | None:
    """A new lock file at ``lock`` (an open fd), or None if something appeared there."""
    content = MAGIC + f"pid {os.getpid()}\n".encode()
    tmp = lock.with_name(f"{lock.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o644)
    try:
        os.write(fd, content)
        os.link(tmp, lock)
    except FileExistsError:
        os.close(fd)
        return None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            os.close(fd)
            raise
        os.close(fd)  # no hard links here: create the lock path itself, exclusively
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o644)
        except FileExistsError:
            return None
        os.write(fd, content)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return fd


def _in_the_way(lock: Path, why: str) -> ConfigError:
    return ConfigError(f"{lock}: {why}, in the way of defocuskit's lock file; defocuskit "
                       "left it as it is. Move or delete it yourself, then run again")


def _open_lock(lock: Path) -> int:
    """An open fd of defocuskit's lock file at ``lock``, made now or left by a killed run."""
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            fd = _create(lock)
            if fd is None:
                continue  # another process made it in between: open that one
            return fd
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _in_the_way(lock, "a symbolic link (never followed)") from None
            if exc.errno == errno.EISDIR:
                raise _in_the_way(lock, "a folder") from None
            raise
        if not stat.S_ISREG(os.fstat(fd).st_mode) or os.pread(fd, len(MAGIC), 0) != MAGIC:
            os.close(fd)
            raise _in_the_way(lock, "a file that defocuskit did not write")
        return fd


def _holder(fd: int) -> str:
    text = os.pread(fd, 64, len(MAGIC)).decode(errors="replace").strip()
    return text.removeprefix("pid ").strip() or "?"


def _acquire(lock: Path, shared: bool) -> tuple[int | None, str]:
    """(fd holding the lock, "") or (None, "writer" / "readers"): who holds it."""
    busy = ""
    for _ in range(_RETRIES):
        fd = _open_lock(lock)
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            busy = "writer"
            if not shared:
                with contextlib.suppress(BlockingIOError):
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                    busy = "readers"
            busy += f":{_holder(fd)}"
            os.close(fd)
            time.sleep(_RETRY_S)  # a holder that is just letting go
            continue
        if _same_file(lock, fd):  # not unlinked by the previous holder meanwhile
            return fd, ""
        os.close(fd)
    return None, busy


def _release(fd: int, lock: Path, shared: bool) -> None:
    try:
        if shared:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # other readers hold it: the file stays
        if _same_file(lock, fd):
            os.unlink(lock)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def writer_lock(path, *, shown=None):
    """Hold the exclusive lock of the local dataset at ``path`` (see the module doc; a
    remote URL: no lock, yields None).

    Raises ConfigError at once if another process writes or reads the dataset, the lock
    path holds something defocuskit did not write, or the lock cannot be made; messages
    name the output as ``shown`` (default: ``path``).
    """
    if _is_remote(path):
        yield None
        return
    lock = lock_path(path)
    path = path if shown is None else shown
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"output {path}: cannot create its parent folder "
                          f"({exc.strerror})") from None
    try:
        fd, busy = _acquire(lock, shared=False)
    except OSError as exc:
        raise ConfigError(f"output {path}: cannot create the lock file {lock} "
                          f"({exc.strerror})") from None
    if fd is None:
        who, _, pid = busy.partition(":")
        if who == "readers":
            raise ConfigError(f"output {path}: the dataset is being read (`trainer fit`, "
                              f"`trainer eval` or another reader holds {lock}); wait for "
                              "it to finish, or choose another --output")
        raise ConfigError(f"output {path}: another `defocuskit synth` (pid {pid}) is "
                          f"writing it (lock {lock}); wait for it to finish")
    try:
        os.ftruncate(fd, len(MAGIC))
        os.pwrite(fd, f"pid {os.getpid()}\n".encode(), len(MAGIC))
        yield lock
    finally:
        _release(fd, lock, shared=False)


class ReaderLock:
    """A shared hold on a dataset's lock, released by :meth:`release` or when collected.

    A copy made by pickling (a DataLoader worker started with spawn) holds nothing: the
    process that took the lock keeps it. A forked child never releases it either.
    """

    def __init__(self, fd: int, lock: Path):
        self.path = lock
        self._finalizer = weakref.finalize(self, _release_in, os.getpid(), fd, lock)

    def release(self) -> None:
        self._finalizer()

    def __reduce__(self):
        return _inert, ()


def _inert():
    return None


def _release_in(owner: int, fd: int, lock: Path) -> None:
    if os.getpid() == owner:
        _release(fd, lock, shared=True)


def reader_lock(path) -> ReaderLock | None:
    """Take a shared hold on the lock of the dataset at ``path`` (local paths).

    Returns None (reading goes on unlocked) where no lock can be made: a remote URL, a
    read-only folder, something else at the lock path.

    Raises
    ------
    ConfigError
        ``defocuskit synth`` is writing the dataset.
    """
    if _is_remote(path):
        return None
    try:
        lock = lock_path(path)
        fd, busy = _acquire(lock, shared=True)
    except (OSError, ConfigError):
        return None
    if fd is None:
        pid = busy.partition(":")[2]
        raise ConfigError(f"dataset {path}: `defocuskit synth` (pid {pid}) is writing it "
                          f"(lock {lock}); wait for it to finish, then run again")
    return ReaderLock(fd, lock)

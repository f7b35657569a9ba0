"""Every file negosim writes goes through here.

* :func:`user_path`: a path the user typed, with ``~`` expanded the same way by
  every command (``--out``, ``-o``, ``--plot``, ``new``...).
* :func:`write_atomic`: the one way an output is written. The data goes to a
  fresh temporary file created with ``O_EXCL`` in the target's directory
  (:func:`tempfile.mkstemp`: an unpredictable name, and a symlink planted there
  is never followed), is flushed and fsync'ed, and then renamed over the target
  with :func:`os.replace`. A reader sees the old file or the new one, never half
  of one. A symlink or anything but a regular file at the target's name (a
  device such as ``/dev/full``) is refused, never written through or replaced.
* :func:`open_nofollow`: journals that are appended to and read back are
  opened with ``O_NOFOLLOW``; a symlink there is refused (exit 2, one line).
* :class:`Lock`: one writer per output (``OUT.lock``, held with ``flock`` so
  that a killed process does not leave it locked).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from .errors import UsageError

Writer = Callable[[IO[bytes]], Any]


def user_path(path: str | os.PathLike[str]) -> Path:
    """A file name from the command line: ``~`` and ``~user`` expanded, nothing else."""
    return Path(os.path.expanduser(os.fspath(path)))


def shown(text: str | os.PathLike[str]) -> str:
    """A name or title as it may appear in a one-line message: as it is if every
    character is printable, else quoted with escapes (a newline cannot start a line)."""
    s = os.fspath(text)
    return s if s.isprintable() else repr(s)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_target(path: str | os.PathLike[str]) -> Path:
    """``path`` (``~`` expanded) if :func:`write_atomic` may write it, else a UsageError:
    said before any work is done, so that a refused output leaves nothing behind."""
    target = user_path(path)
    if target.name in ("", ".", ".."):
        raise UsageError(f"{shown(path)}: not a file name")
    if target.is_symlink():
        raise UsageError(
            f"{shown(path)}: is a symbolic link; negosim neither writes through one nor "
            "replaces it (remove it, or name another file)"
        )
    if os.path.lexists(target) and not target.is_file():
        raise UsageError(f"{shown(path)}: exists and is not a regular file; name a file to write")
    if not target.parent.is_dir():
        raise UsageError(f"{shown(path)}: No such file or directory")
    return target


def write_atomic(path: str | os.PathLike[str], data: str | bytes | Writer) -> Path:
    """Write ``data`` (text as UTF-8, bytes, or ``writer(binary_file)``) to ``path`` atomically.

    The directory must exist (an OSError naming it otherwise). Returns the path.
    """
    target = check_target(path)
    directory = target.parent
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise UsageError(f"{shown(path)}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(data, str):
                f.write(data.encode("utf-8"))
            elif isinstance(data, bytes):
                f.write(data)
            else:
                data(f)
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), 0o666 & ~_umask())  # as open() would have made it
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise UsageError(f"{shown(path)}: cannot write: {exc.strerror or exc}") from None
        raise
    _sync_dir(directory)
    return target


def _sync_dir(directory: Path) -> None:
    """Make the rename durable (best effort: not every file system allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory or ".", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def refuse_symlink(path: Path, what: str) -> None:
    """UsageError if ``path`` is a symbolic link (dangling or not)."""
    if path.is_symlink():
        raise UsageError(f"{path}: the {what} is a symbolic link; refusing to follow it")


def open_nofollow(path: Path, what: str, flags: int) -> int:
    """``os.open`` with ``O_NOFOLLOW``: a symlink at ``path`` is refused with a UsageError."""
    refuse_symlink(path, what)
    try:
        return os.open(path, flags | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError:
        if path.is_symlink():  # planted between the check and the open
            raise UsageError(
                f"{path}: the {what} is a symbolic link; refusing to follow it"
            ) from None
        raise


def read_nofollow(path: Path, what: str) -> bytes:
    """The bytes of ``path``, refusing a symlink."""
    fd = open_nofollow(path, what, os.O_RDONLY)
    with os.fdopen(fd, "rb") as f:
        return f.read()


class Lock:
    """``OUT.lock``: while held, no other negosim process writes ``OUT``.

    Created with ``O_NOFOLLOW`` and held with ``flock``, so a process killed
    with SIGKILL leaves no stale lock. Released (and the file removed) on exit.
    """

    def __init__(self, out: Path):
        self.out = out
        self.path = out.with_name(out.name + ".lock")
        self._fd: int | None = None

    def __enter__(self) -> Lock:
        import fcntl

        for _ in range(10):
            fd = open_nofollow(self.path, "lock file", os.O_RDWR | os.O_CREAT)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise UsageError(
                    f"another negosim sweep is writing {self.out} (lock {self.path}); "
                    "wait for it to finish"
                ) from None
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path, follow_symlinks=False))
            except FileNotFoundError:
                same = False
            if same:  # not a file the previous holder removed as we opened it
                self._fd = fd
                return self
            os.close(fd)
        raise UsageError(f"{self.path}: could not take the lock; try again")

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            os.close(self._fd)
            self._fd = None

"""Writing files safely: output locations checked before any work, every file written atomically.

* :func:`check_output_file` / :func:`check_output_dir`: called by a command before it computes anything. A
  file output needs an existing, writable folder (or, for the default ``build/`` places, one that can be
  created), must not be a folder or anything but a regular file, must have an allowed extension (plots:
  :data:`PLOT_EXTS`) and must not be one of the command's inputs (refused, so an input always survives).
  A folder output must be a folder, or a path whose nearest existing parent is a writable folder (it is
  created when the results are written).
* :class:`AtomicGroup` / :func:`atomic_path` / :func:`write_bytes` / :func:`write_text`: each file goes to a
  unique temporary name in its own folder (``.<name>.<random>.tmp<ext>``, so writers that look at the
  extension still see it) and is renamed into place only when all of the result is written; on any error
  or Ctrl-C the temporary files are removed and the old files are untouched. The files of a group are
  renamed in the order they were added (the file that later commands read as "the result", e.g. a JSON
  table, goes last, after its plot) with SIGINT held back during the renames, so a result is complete or
  absent. New files get the usual permissions (0666 less the umask).

Errors are :class:`~golden.errors.UserError` with one line naming the path.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from golden.errors import UserError

PLOT_EXTS = (".png", ".pdf", ".svg")
"""Extensions a plot may have (what matplotlib writes without extra packages)."""


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_MODE = 0o666 & ~_umask()


def _path(path: str | os.PathLike, what: str) -> Path:
    text = os.fspath(path)
    if not text or text.endswith(("/", os.sep)) or Path(text).name in ("", ".", ".."):
        raise UserError(f"{what} {text!r} is not a file name")
    return Path(text)


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name the same file (the same inode where both exist, else the same absolute path)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def _check_not_input(p: Path, what: str, inputs: Iterable[tuple[str, str | os.PathLike | None]]) -> None:
    for name, src in inputs:
        if src is not None and same_file(p, src):
            raise UserError(f"{what} {p} is also the input {name} {src}: refused, so the input survives; "
                            "choose another name")


def _writable_dir(d: Path, what: str, create: bool) -> None:
    """``d`` is a writable folder, or (``create``) its nearest existing parent is one."""
    probe = d
    while not probe.exists():
        if not create:
            raise UserError(f"the folder {d} of the {what} does not exist")
        if probe.is_symlink():   # a dangling link
            raise UserError(f"the folder {probe} of the {what} is a broken symbolic link")
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(f"{probe} is a file, not a folder ({what} {d})")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UserError(f"the folder {probe} of the {what} is not writable")


def check_output_file(path: str | os.PathLike, what: str = "output file", exts: Iterable[str] | None = None,
                      inputs: Iterable[tuple[str, str | os.PathLike | None]] = (),
                      create_parent: bool = False) -> Path:
    """Check a file the command will write, before any work (module docstring); returns it as a Path.

    ``exts``: allowed extensions (lower case, with the dot); ``inputs``: ``(option, path)`` pairs the output
    must differ from; ``create_parent``: the folder may be missing if it can be created (default places)."""
    p = _path(path, what)
    if exts is not None:
        exts = tuple(exts)
        ext = p.suffix.lower()
        if ext not in exts:
            raise UserError(f"{what} extension {ext or '(none)'!r} of {p} is not supported: use {', '.join(exts)}")
    if p.is_dir():
        raise UserError(f"{what} {p} is a folder; give a file name")
    if p.exists() and not p.is_file():
        raise UserError(f"{what} {p} exists and is not a regular file")
    _writable_dir(p.parent, what, create_parent)
    _check_not_input(p, what, inputs)
    return p


def check_output_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Check a folder the command will write into (created if missing), before any work."""
    p = Path(os.fspath(path))
    if p.exists() and not p.is_dir():
        raise UserError(f"{what} {p} is a file, not a folder")
    _writable_dir(p, what, create=True)
    return p


def make_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """``mkdir -p`` with a one-line UserError (a file in the way, no permission, a full disk)."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the {what} {p}: {e.strerror or e}") from None
    return p


# ---- atomic writes -----------------------------------------------------------------------------------------


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM held back (delivered when the block ends): a few renames cannot be cut in half."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class AtomicGroup:
    """Files that make one result, written to temporary names and renamed together (module docstring).

    ::

        with AtomicGroup() as g:
            fig.savefig(g.path(out / "plot.png"))
            g.path(out / "table.json").write_text(text)     # renamed last: the table marks the result complete
    """

    def __init__(self) -> None:
        self._items: list[tuple[Path, Path]] = []

    def path(self, final: str | os.PathLike, what: str = "output file") -> Path:
        """A new temporary file beside ``final`` (its folder is created if missing); written by the caller."""
        final = Path(final)
        make_dir(final.parent, f"folder of the {what}")
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=f".tmp{final.suffix}", dir=final.parent)
        except OSError as e:
            raise UserError(f"cannot write {final}: {e.strerror or e}") from None
        os.close(fd)
        self._items.append((Path(tmp), final))
        return Path(tmp)

    def __enter__(self) -> AtomicGroup:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        finals = ", ".join(str(final) for _, final in self._items) or "the output"
        try:
            if exc_type is None:
                self._commit()
        finally:
            self.discard()
        if isinstance(exc, OSError):   # the writer failed: a full disk, a lost permission
            raise UserError(f"cannot write {finals}: {exc.strerror or exc}") from None

    def _commit(self) -> None:
        with _signals_held():
            while self._items:
                tmp, final = self._items[0]
                try:
                    os.chmod(tmp, _MODE)
                    os.replace(tmp, final)
                except OSError as e:
                    raise UserError(f"cannot write {final}: {e.strerror or e}") from None
                self._items.pop(0)

    def discard(self) -> None:
        """Remove the temporary files not renamed yet."""
        for tmp, _ in self._items:
            with contextlib.suppress(OSError):
                tmp.unlink()
        self._items = []


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, what: str = "output file") -> Iterator[Path]:
    """A temporary path beside ``path`` to write; renamed onto ``path`` when the block ends without error."""
    with AtomicGroup() as g:
        yield g.path(path, what)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """``path`` gets ``data`` atomically: complete or untouched."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """``path`` gets ``text`` (UTF-8) atomically: complete or untouched."""
    return write_bytes(path, text.encode())

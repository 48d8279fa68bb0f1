"""Writing files so that a reader never sees half of one, with the modes a plain open() gives.

Every file and directory the tools produce (translations, prepared corpora, checkpoints, pointer
files, the export) is written under a temporary name beside its destination and renamed over it
when complete, so a kill at any moment leaves either the old or the new version, never a mix.

`tempfile` creates its files 0600 and directories 0700; a plain ``open()``/``mkdir()`` gives
0666/0777 minus the umask. The helpers here give the final file or directory the plain modes, so
output is as readable as the user's umask allows (a TF Serving process running as another user
can read an export).

Paths that are not regular files (``/dev/stdout``, ``/dev/null``, a named pipe) cannot be renamed
over: they are written directly. A write that fails (a full disk, a read-only directory, a file
size limit) removes the temporary file and raises a one-line `UserError` naming the destination.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from nmt.errors import UserError


def umask() -> int:
    """The process umask (read without changing it where /proc allows, else by setting it back)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def plain_mode(directory: bool = False) -> int:
    """The mode open() (0666) or mkdir() (0777) would give a new file or directory here."""
    return (0o777 if directory else 0o666) & ~umask()


def write_error(path, error: OSError, what: str | None = None) -> UserError:
    """A one-line UserError for a failed write of path (what: the option or role that named it).

    HDF5 (Keras' weights files) reports a failed write as an OSError without strerror whose text holds
    ``error message = 'No space left on device'``: that reason is what is shown."""
    reason = error.strerror
    if not reason:
        match = re.search(r"error message = '([^']+)'", str(error))
        reason = match.group(1) if match else " ".join(str(error).split())[:200]
    prefix = f"{what} {path}" if what else f"{path}"
    return UserError(f"{prefix}: cannot write it ({reason})")


def is_special(path) -> bool:
    """True for an existing path that is not a regular file or directory (a device, a pipe, a socket)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def fsync_dir(path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class AtomicFile:
    """A file written under a temporary name beside `path` and renamed over it by `commit()`.

    ``file`` is the open file object (text, UTF-8, LF line ends; or binary). `abort()` removes the
    temporary file. A special path (device, pipe) is opened and written directly. OSErrors while
    opening, writing or committing become one-line UserErrors naming ``what path``.
    """

    def __init__(self, path, what: str | None = None, binary: bool = False, fsync: bool = False):
        self.path = Path(path)
        self.what = what
        self.fsync = fsync
        self.tmp: Path | None = None
        try:
            if is_special(self.path):
                self.file: IO = open(self.path, "wb" if binary else "w", **({} if binary else _TEXT))
                return
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.tmp-")
        except OSError as error:
            raise write_error(self.path, error, what) from None
        self.tmp = Path(tmp)
        self.file = os.fdopen(fd, "wb" if binary else "w", **({} if binary else _TEXT))

    def write(self, data) -> None:
        try:
            self.file.write(data)
        except OSError as error:
            self.abort()
            raise write_error(self.path, error, self.what) from None

    def flush(self) -> None:
        try:
            self.file.flush()
        except OSError as error:
            self.abort()
            raise write_error(self.path, error, self.what) from None

    def commit(self) -> None:
        """Closes the file and renames it into place with the plain file mode."""
        try:
            if self.tmp is None:
                if not self.file.closed:
                    self.file.close()
                return
            self.file.flush()
            if self.fsync:
                os.fsync(self.file.fileno())
            self.file.close()
            os.chmod(self.tmp, plain_mode())
            os.replace(self.tmp, self.path)
            self.tmp = None
            if self.fsync:
                fsync_dir(self.path.parent)
        except OSError as error:
            self.abort()
            raise write_error(self.path, error, self.what) from None

    def abort(self) -> None:
        """Closes and removes the temporary file (a special path is just closed)."""
        try:
            self.file.close()
        except OSError:
            pass
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)
            self.tmp = None

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()


_TEXT = {"encoding": "utf-8", "newline": "\n"}


def atomic_write_text(path, text: str, what: str | None = None, fsync: bool = True) -> None:
    """Writes text to path atomically (temporary file, fsync, rename, fsync of the directory)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with AtomicFile(path, what=what, fsync=fsync) as f:
        f.write(text)


def new_temp_dir(parent, prefix: str) -> Path:
    """A new, empty directory in parent with the plain directory mode (mkdtemp gives 0700)."""
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
    os.chmod(tmp, plain_mode(directory=True))
    return tmp


@contextmanager
def atomic_directory(path, what: str | None = None) -> Iterator[Path]:
    """Yields a temporary directory beside path; when the block ends without an exception it
    replaces path (an existing one is moved aside first, then removed). On an exception the
    temporary directory is removed; an OSError becomes a one-line UserError naming path."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = new_temp_dir(path.parent, f".{path.name}.tmp-")
    except OSError as error:
        raise write_error(path, error, what) from None
    old = None
    try:
        yield tmp
        if path.exists():
            old = new_temp_dir(path.parent, f".{path.name}.old-")
            os.replace(path, old / path.name)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as error:
        raise write_error(path, error, what) from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def child(directory, name, what: str) -> Path:
    """directory/name for a file name read from a run directory's own files (tokenizer.json, a checkpoint
    pointer): a run directory is data, so the name must be a plain name of an entry inside directory
    (no separator, no '..'), and the entry must not lead outside it through a symbolic link. `what` names
    the file the name came from, for the one-line error."""
    directory = Path(directory)
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise UserError(
            f"{what}: {name!r} is not a plain file name inside {directory}; expected a name such as 'spm.model'"
        )
    path = directory / name
    try:
        resolved, root = path.resolve(), directory.resolve()
    except (OSError, RuntimeError) as error:
        raise UserError(f"{what}: cannot resolve {path} ({error})") from None
    if resolved.parent != root and root not in resolved.parents:
        raise UserError(
            f"{what}: {path} leads outside {directory} (a symbolic link); a run directory must be self-contained"
        )
    return path

"""Reading text files line by line: the one reader of every text file the project takes in.

Corpus files (`nmt.text.corpus`), the tokenizer's sample (`nmt.text.tokenizer`), prepared copies
(`nmt.cli.prepare`), hypotheses and references (`nmt.text.evaluation`, ``translate.py --reference``) and
translate's input (``--input`` or standard input, through `LineReader`) are all read here:

* bytes are decoded as strict UTF-8, one line at a time; a byte order mark is kept (``\\ufeff``),
  as ``tf.data`` and the sacrebleu command line keep it;
* lines are split at LF (``\\n``) only: CR, VT, FF, U+0085, U+2028... stay inside the line, and a
  last line without LF counts;
* a file that starts with the gzip magic bytes ``1f 8b`` is decompressed, whatever its name;
* invalid UTF-8 is a one-line `UserError` naming the file, the line (from 1), the byte within the
  line (from 1) and its value; a truncated gzip stream names the file and the line it stopped at.

What differs between callers is one explicit parameter, the `Convention`: how the end of a line is
cut and how a bad byte is worded.

=============  =================================================  ================================
convention     the line                                           used by
=============  =================================================  ================================
`TENSORFLOW`   LF removed, then every CR anywhere in the line     corpus, tokenizer, prepare: the
               (what ``tf.data.TextLineDataset`` sees)            lines the training stream sees
`SACREBLEU`    trailing whitespace removed, CR included (what     evaluation: hypotheses and
               the sacrebleu command line sees)                   references
`CRLF`         the LF and one CR before it removed (LF or CRLF    translate.py's input: nothing
               endings; every other character kept)               of the sentence is lost
=============  =================================================  ================================

`TENSORFLOW` words a bad byte as ``FILE line N: invalid UTF-8 at byte B of the line (0xVV); ...``,
the command-line conventions (printed after ``error: `` by translate.py and evaluate.py) as
``FILE, line N: not valid UTF-8 (byte 0xVV at byte B of the line); ...``: the same four facts.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from nmt.errors import UserError
from nmt.text.progress import Progress

GZIP_MAGIC = b"\x1f\x8b"
_PROGRESS_EVERY = 4096  # lines between two progress updates
_BLOCK_BYTES = 1 << 20  # bytes read at a time by read_lines

_CORPUS_WORDING = (
    "{name} line {line}: invalid UTF-8 at byte {byte} of the line (0x{value:02x}); corpus files must be UTF-8 text"
)
_COMMAND_LINE_WORDING = (
    "{name}, line {line}: not valid UTF-8 (byte 0x{value:02x} at byte {byte} of the line); expected UTF-8 text"
)


def _cut_every_cr(text: str) -> str:
    return text.removesuffix("\n").replace("\r", "")


def _cut_one_ending(text: str) -> str:
    return text.removesuffix("\n").removesuffix("\r")


@dataclass(frozen=True)
class Convention:
    """How a reader cuts the end of a decoded line (LF included) and words invalid UTF-8."""

    name: str
    #: The decoded line, LF included when the file has one -> the line the caller gets.
    cut: Callable[[str], str]
    #: str.format template with name (the file), line, byte (both from 1) and value (the bad byte).
    invalid_utf8: str


TENSORFLOW = Convention("tensorflow", _cut_every_cr, _CORPUS_WORDING)
SACREBLEU = Convention("sacrebleu", str.rstrip, _COMMAND_LINE_WORDING)
CRLF = Convention("crlf", _cut_one_ending, _COMMAND_LINE_WORDING)


def decode_line(raw: bytes, name: str, number: int, convention: Convention = TENSORFLOW) -> str:
    """One raw line (LF included, if any) as text, cut by ``convention``; UserError on invalid UTF-8.

    ``name`` is the file as the message shows it, ``number`` the line number from 1.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _invalid_utf8(raw, error, name, number, convention) from None
    return convention.cut(text)


def _invalid_utf8(raw: bytes, error: UnicodeDecodeError, name: str, number: int, convention: Convention) -> UserError:
    start = error.start
    return UserError(convention.invalid_utf8.format(name=name, line=number, byte=start + 1, value=raw[start]))


# ------------------------------------------------------------------------------------------------ opening


class _Gunzip(gzip.GzipFile):
    """The decompressed content of an open binary file; closing it closes the file too."""

    def __init__(self, raw: BinaryIO):
        super().__init__(fileobj=raw, mode="rb")
        self.raw = raw

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.raw.close()


def is_gzip(path: str | os.PathLike) -> bool:
    """Whether the file starts with the gzip magic bytes (its name does not matter)."""
    with open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


def open_binary(path: str | os.PathLike, what: str | None = None) -> BinaryIO:
    """The file's bytes, decompressed when it starts with the gzip magic bytes.

    A missing file, a directory or an unreadable file is a UserError naming ``what`` (an option such as
    ``--input``, if given) and the path. Peeks rather than reads the first bytes, so a FIFO is read once.
    """
    label = f"{what} {path}" if what else str(path)
    try:
        raw = open(path, "rb")
    except FileNotFoundError:
        raise UserError(f"{label}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{label}: is a directory, expected a text file") from None
    except OSError as error:
        raise UserError(f"{label}: cannot read it ({error.strerror or error})") from None
    try:
        gz = raw.peek(len(GZIP_MAGIC))[: len(GZIP_MAGIC)] == GZIP_MAGIC
    except OSError as error:
        raw.close()
        raise UserError(f"{label}: cannot read it ({error.strerror or error})") from None
    return _Gunzip(raw) if gz else raw


# ------------------------------------------------------------------------------------------------ reading


class LineReader:
    """The lines of an open binary stream (a file from `open_binary`, standard input, a pipe) as text.

    Iterate for all lines, or call `readline` (None at the end) for one at a time (an interactive
    prompt). ``lines_read`` counts lines; ``bytes_read`` is how far into the file the reader is (of the
    compressed file, for gzip), for a progress bar against the file's size; given one, ``progress`` is
    updated every few thousand lines of the iteration.
    """

    def __init__(
        self, stream: BinaryIO, name: str, convention: Convention = TENSORFLOW, progress: Progress | None = None
    ):
        self.stream = stream
        self.name = name
        self.convention = convention
        self.progress = progress
        self.lines_read = 0
        self._bytes = 0

    @property
    def bytes_read(self) -> int:
        if isinstance(self.stream, _Gunzip):
            return self.stream.raw.tell()
        return self._bytes

    def __iter__(self) -> Iterator[str]:
        # decode_line inlined, and counts kept in locals: this loop reads every corpus line several times.
        name, convention, cut, progress = self.name, self.convention, self.convention.cut, self.progress
        lines, size = self.lines_read, self._bytes
        for raw in self.stream:
            lines += 1
            size += len(raw)
            self.lines_read, self._bytes = lines, size
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise _invalid_utf8(raw, error, name, lines, convention) from None
            if progress is not None and lines % _PROGRESS_EVERY == 0:
                progress.update(lines, self.bytes_read)
            yield cut(text)

    def blocks(self, size: int = _BLOCK_BYTES) -> Iterator[str]:
        """The lines `__iter__` gives, read and decoded a block of about ``size`` bytes at a time: a few
        times faster on big files (the decoding and, for `TENSORFLOW`, the CR removal run once per block).
        For files only: a read waits for a whole block (a prompt or a slow pipe needs `__iter__`). A
        block's bad byte is found line by line, so the error is the one `__iter__` gives."""
        read = getattr(self.stream, "read1", self.stream.read)  # read1: what was read before an error is kept
        pending = b""
        while True:
            data = read(size)
            if not data:
                break
            data = pending + data
            end = data.rfind(b"\n") + 1
            if end == 0:
                pending = data
                continue
            pending = data[end:]
            yield from self._block(data[:end])
        if pending:
            yield from self._block(pending)

    def _block(self, block: bytes) -> Iterator[str]:
        """The lines of a block of whole lines (each ends with LF, but perhaps the file's last)."""
        try:
            text = block.decode("utf-8")  # LF is never inside a UTF-8 sequence: valid as a whole = line by line
        except UnicodeDecodeError:
            for raw in _split_lf(block):
                self.lines_read += 1
                self._bytes += len(raw)
                yield decode_line(raw, self.name, self.lines_read, self.convention)
            return
        if self.convention is TENSORFLOW:  # its cut, once for the block: the LFs split, every CR removed
            text = text.replace("\r", "")
        pieces = text.split("\n")
        last = pieces.pop()  # "" after a final LF, else the file's last line (no LF)
        ends_with_lf = block.endswith(b"\n")
        if self.convention is TENSORFLOW:
            lines = pieces if ends_with_lf else pieces + [last]
        else:
            cut = self.convention.cut
            lines = [cut(piece + "\n") for piece in pieces] + ([] if ends_with_lf else [cut(last)])
        self.lines_read += len(lines)
        self._bytes += len(block)
        if self.progress is not None:
            self.progress.update(self.lines_read, self.bytes_read)
        yield from lines

    def readline(self) -> str | None:
        raw = self.stream.readline()
        if not raw:
            return None
        self._bytes += len(raw)
        self.lines_read += 1
        return decode_line(raw, self.name, self.lines_read, self.convention)


def _split_lf(block: bytes) -> list[bytes]:
    """The lines of a block, LF kept, split at LF only (bytes.splitlines also splits at CR)."""
    parts = block.split(b"\n")
    lines = [part + b"\n" for part in parts[:-1]]
    return lines + [parts[-1]] if parts[-1] else lines


def read_lines(
    path: str | os.PathLike,
    convention: Convention = TENSORFLOW,
    *,
    progress: str | None = None,
    what: str | None = None,
) -> Iterator[str]:
    """The lines of a text file, one at a time (see the module docstring for the rules).

    ``progress``: a label ("checking", "copying"...) for a progress bar on standard error
    (`nmt.text.progress`); ``what``: the option or setting that named the file, for the open errors.
    """
    if not isinstance(convention, Convention):
        raise TypeError(f"convention: expected TENSORFLOW, SACREBLEU or CRLF, got {convention!r}")
    path = Path(path)
    stream = open_binary(path, what)
    bar = Progress(f"{progress} {path.name}", total_bytes=os.fstat(stream.fileno()).st_size) if progress else None
    reader = LineReader(stream, str(path), convention, bar)
    try:
        yield from reader.blocks()
    except (OSError, EOFError, zlib.error) as error:
        raise _read_error(path, stream, reader.lines_read + 1, error) from None
    finally:
        if bar is not None:
            bar.update(reader.lines_read, reader.bytes_read)
            bar.close()
        stream.close()


def count_lines(path: str | os.PathLike, what: str | None = None) -> int:
    """How many lines `read_lines` gives for the file, under any convention (LFs, plus a last line
    without one), counted in blocks without decoding: invalid UTF-8 is found when the lines are read."""
    count, last = 0, b"\n"
    with open_binary(path, what) as f:
        try:
            while block := f.read(1 << 20):
                count += block.count(b"\n")
                last = block[-1:]
        except (OSError, EOFError, zlib.error) as error:
            raise _read_error(path, f, count + 1, error) from None
    return count + (last != b"\n")


def _read_error(path, stream: BinaryIO, number: int, error: BaseException) -> UserError:
    kind = "the gzip data" if isinstance(stream, _Gunzip) else "it"
    return UserError(f"{path} line {number}: cannot read {kind} ({error}); is the file complete?")

"""The one text-file reader (nmt.text.textfile) against independent readers: Python's decoder line by line,
tf.data's TextLineDataset, the sacrebleu command line's own reader, gzip against plain, and the exact
file / line / byte of the first invalid UTF-8."""

from __future__ import annotations

import gzip
import os
import random
import threading
from pathlib import Path

import pytest

from nmt.errors import UserError
from nmt.text import textfile
from nmt.text.textfile import CRLF, SACREBLEU, TENSORFLOW, LineReader, count_lines, open_binary, read_lines

CONVENTIONS = [TENSORFLOW, SACREBLEU, CRLF]
RANGES = [(0x20, 0x7E), (0xA0, 0x17F), (0x4E00, 0x4FFF), (0x1F300, 0x1F6FF)]  # 1 to 4 bytes in UTF-8
# Characters that look like line ends or spaces to some reader or other; only LF ends a line here.
SPECIAL = ["\r", "\r\n", "\n", "\x00", "\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\t", " ", "\ufeff", "é"]


def random_document(rng: random.Random, corrupt: bool) -> bytes:
    """Text made of ASCII, multi-byte characters and line-end look-alikes, maybe with a few random bytes
    overwritten (usually invalid UTF-8 somewhere inside). Never starts with the gzip magic bytes."""
    pieces = []
    for _ in range(rng.randrange(0, 60)):
        if rng.random() < 0.4:
            pieces.append(rng.choice(SPECIAL))
        else:
            lo, hi = rng.choice(RANGES)
            pieces.append(chr(rng.randint(lo, hi)))
    data = bytearray("".join(pieces).encode("utf-8"))
    if corrupt and data:
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    if data[:2] == textfile.GZIP_MAGIC:
        data[:0] = b"x"
    return bytes(data)


def oracle(data: bytes, convention):
    """(lines, None) or (None, (line, byte, value)) computed without nmt: split at LF, decode each line."""
    raw_lines = data.split(b"\n")
    if raw_lines[-1] == b"":
        raw_lines.pop()
    lines = []
    for number, raw in enumerate(raw_lines, 1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            return None, (number, error.start + 1, raw[error.start])
        if convention is TENSORFLOW:
            text = text.replace("\r", "")
        elif convention is CRLF:
            text = text[:-1] if text.endswith("\r") else text
        else:
            text = text.rstrip()
        lines.append(text)
    return lines, None


def expected_message(convention, name, line: int, byte: int, value: int) -> str:
    if convention is TENSORFLOW:
        return (
            f"{name} line {line}: invalid UTF-8 at byte {byte} of the line (0x{value:02x}); "
            "corpus files must be UTF-8 text"
        )
    return f"{name}, line {line}: not valid UTF-8 (byte 0x{value:02x} at byte {byte} of the line); expected UTF-8 text"


def write(path: Path, data: bytes, gz: bool = False) -> Path:
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def outcome(path: Path, convention):
    try:
        return list(read_lines(path, convention)), None
    except UserError as error:
        return None, str(error)


# ------------------------------------------------------------------------------------------------ oracles


@pytest.mark.parametrize("seed", range(200))
def test_random_documents_against_python_decoder_plain_and_gzip(tmp_path, seed):
    rng = random.Random(seed)
    data = random_document(rng, corrupt=seed % 2 == 1)
    plain = write(tmp_path / "doc.txt", data)
    packed = write(tmp_path / "doc.txt.gz", data, gz=True)
    unnamed = write(tmp_path / "doc2.txt", data, gz=True)  # gzip without a .gz name
    for convention in CONVENTIONS:
        lines, bad = oracle(data, convention)
        for path in (plain, packed, unnamed):
            got, error = outcome(path, convention)
            if bad is None:
                assert error is None, (convention.name, error)
                assert got == lines, (convention.name, path.name)
            else:
                assert error == expected_message(convention, path, *bad), (convention.name, error)
    raw_lines = data.split(b"\n")
    assert count_lines(plain) == count_lines(packed) == len(raw_lines) - (raw_lines[-1] == b"")


@pytest.mark.parametrize("seed", range(40))
def test_tensorflow_convention_reads_what_tf_data_reads(tmp_path, seed):
    import tensorflow as tf

    rng = random.Random(10_000 + seed)
    data = random_document(rng, corrupt=False)
    if seed % 5 == 0:
        data = "\ufeff".encode() + data  # a BOM at the start of the file
    for gz in (False, True):
        path = write(tmp_path / f"doc{int(gz)}", data, gz=gz)
        theirs = tf.data.TextLineDataset(str(path), compression_type="GZIP" if gz else "")
        assert list(read_lines(path, TENSORFLOW)) == [x.decode("utf-8") for x in theirs.as_numpy_iterator()]


@pytest.mark.parametrize("seed", range(40))
def test_sacrebleu_convention_reads_what_the_sacrebleu_command_line_reads(tmp_path, seed):
    from sacrebleu.utils import smart_open

    rng = random.Random(20_000 + seed)
    data = random_document(rng, corrupt=False)
    if seed % 5 == 0:
        data = "\ufeff".encode() + data
    for name, gz in (("hyp.txt", False), ("hyp.txt.gz", True)):
        path = write(tmp_path / name, data, gz=gz)
        with smart_open(str(path)) as f:
            theirs = [line.rstrip() for line in f]
        assert list(read_lines(path, SACREBLEU)) == theirs


def test_line_ends_by_convention(tmp_path):
    path = write(tmp_path / "f.txt", "\ufeffa b  \r\n c\r\r\nd\re\n\n\u2028x\x85\ny\t".encode())
    assert list(read_lines(path, TENSORFLOW)) == ["\ufeffa b  ", " c", "de", "", "\u2028x\x85", "y\t"]
    assert list(read_lines(path, SACREBLEU)) == ["\ufeffa b", " c", "d\re", "", "\u2028x", "y"]
    assert list(read_lines(path, CRLF)) == ["\ufeffa b  ", " c\r", "d\re", "", "\u2028x\x85", "y\t"]
    assert count_lines(path) == 6
    empty = write(tmp_path / "empty.txt", b"")
    assert [list(read_lines(empty, c)) for c in CONVENTIONS] == [[], [], []] and count_lines(empty) == 0


# ------------------------------------------------------------------------------------------------ errors


def test_invalid_utf8_names_file_line_and_byte(tmp_path):
    # "ä" is two bytes, so the truncated \xc3 after "xäy" is byte 5 of line 2.
    path = write(tmp_path / "t.de", b"fine\n" + "xäy".encode() + b"\xc3\nafter\n")
    with pytest.raises(UserError) as error:
        list(read_lines(path))
    assert str(error.value) == (
        f"{path} line 2: invalid UTF-8 at byte 5 of the line (0xc3); corpus files must be UTF-8 text"
    )
    with pytest.raises(UserError) as error:
        list(read_lines(path, SACREBLEU))
    assert str(error.value) == f"{path}, line 2: not valid UTF-8 (byte 0xc3 at byte 5 of the line); expected UTF-8 text"


def test_lines_before_the_bad_one_are_given(tmp_path):
    path = write(tmp_path / "t.en", b"one\ntwo\n\xff\n")
    got = []
    with pytest.raises(UserError, match="line 3"):
        for line in read_lines(path):
            got.append(line)
    assert got == ["one", "two"]


def test_truncated_gzip_names_file_and_line(tmp_path):
    full = gzip.compress(("line\n" * 20_000).encode())
    path = write(tmp_path / "cut.gz", full[: len(full) // 2])
    got = []
    with pytest.raises(
        UserError, match=r"^\S*cut\.gz line (\d+): cannot read the gzip data .*is the file complete\?$"
    ) as error:
        for line in read_lines(path):
            got.append(line)
    assert f"line {len(got) + 1}:" in str(error.value) and 0 < len(got) < 20_000
    with pytest.raises(UserError, match=r"cut\.gz line \d+: cannot read the gzip data"):
        count_lines(path)


def test_open_errors_name_the_option_and_the_file(tmp_path):
    with pytest.raises(UserError, match=r"^--input .*nothing\.en: no such file$"):
        open_binary(tmp_path / "nothing.en", what="--input")
    with pytest.raises(UserError, match=r"^\S*nothing\.en: no such file$"):
        list(read_lines(tmp_path / "nothing.en"))
    with pytest.raises(UserError, match=r"is a directory, expected a text file$"):
        count_lines(tmp_path)


# ------------------------------------------------------------------------------------------------ streams


@pytest.mark.parametrize("gz", [False, True])
def test_line_reader_iteration_readline_and_position(tmp_path, gz):
    data = "".join(f"line {i} ü\r\n" for i in range(5000)).encode() + b"last"
    path = write(tmp_path / "in.txt", data, gz=gz)
    with open_binary(path) as stream:
        reader = LineReader(stream, "in.txt", CRLF)
        assert reader.readline() == "line 0 ü"
        rest = list(reader)
        assert reader.readline() is None
        assert reader.lines_read == 5001
        assert reader.bytes_read == path.stat().st_size  # of the file as stored (compressed for gzip)
    assert rest == [f"line {i} ü" for i in range(1, 5000)] + ["last"]


def test_a_fifo_is_read_once_even_when_gzip_is_looked_for(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    data = b"".join(b"%d\n" % i for i in range(100_000))
    writer = threading.Thread(target=lambda: fifo.write_bytes(data), daemon=True)
    writer.start()
    try:
        assert list(read_lines(fifo)) == [str(i) for i in range(100_000)]
    finally:
        writer.join(timeout=10)


def test_progress_does_not_change_the_lines(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NMT_PROGRESS", "1")
    data = "".join(f"{i}\n" for i in range(10_000)).encode()
    for gz in (False, True):
        path = write(tmp_path / f"p{int(gz)}", data, gz=gz)
        assert list(read_lines(path, progress="checking")) == [str(i) for i in range(10_000)]
    capsys.readouterr()


@pytest.mark.parametrize("convention", [TENSORFLOW, SACREBLEU, CRLF], ids=lambda c: c.name)
@pytest.mark.parametrize("size", [1, 3, 7, 64, 1 << 20])
def test_reading_in_blocks_gives_the_lines_of_reading_line_by_line(tmp_path, convention, size):
    """read_lines reads blocks of bytes (LineReader.blocks) for speed: against LineReader's line-by-line
    iteration, on text with CR, CRLF, a BOM, empty lines, multi-byte characters split across blocks, a last
    line without LF (or only a CR), for block sizes from 1 byte up."""
    rng = random.Random(size)
    pieces = ["a", "ä", "€", "𝄞", " ", "\r", "\t", "x y", "\u2028", "\ufeff", ""]
    for case in range(12):
        lines = ["".join(rng.choice(pieces) for _ in range(rng.randrange(6))) for _ in range(rng.randrange(1, 30))]
        data = ("\ufeff" if case % 3 == 0 else "") + "\n".join(lines) + ("\n" if case % 2 else "")
        if case == 5:
            data += "\r"  # a last line of one CR, no LF
        path = write(tmp_path / f"t{case}.txt", data.encode("utf-8"))
        with open(path, "rb") as stream:
            want = list(LineReader(stream, str(path), convention))
        with open(path, "rb") as stream:
            reader = LineReader(stream, str(path), convention)
            got = list(reader.blocks(size))
        assert got == want, (case, data)
        assert reader.lines_read == len(want) and reader.bytes_read == len(data.encode("utf-8"))
    # a bad byte: the same error, after the same lines, in a block or line by line
    path = write(tmp_path / "bad.txt", "one\nzwei ä\n".encode() + b"dr\xc3i\nvier\n")
    for read in (
        lambda s: LineReader(s, str(path), convention),
        lambda s: LineReader(s, str(path), convention).blocks(size),
    ):
        got = []
        with open(path, "rb") as stream, pytest.raises(UserError) as error:
            for line in read(stream):
                got.append(line)
        assert len(got) == 2 and "line 3" in str(error.value) and "byte 3" in str(error.value)

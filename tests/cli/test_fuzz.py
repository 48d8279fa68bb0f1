"""Fuzz: random bytes and random Unicode through the corpus reader, translate.py and the Translator.

No crash; one output line per input line; invalid UTF-8 reported with the file, the line and the byte,
exactly where an independent decoder (Python's, line by line) finds it first. Seeded, so a failure
reproduces.
"""

from __future__ import annotations

import io
import random

import pytest

from nmt.errors import UserError
from nmt.text.corpus import read_lines

# Code points a text may hold: ASCII, Latin, combining marks, line-break look-alikes, right-to-left
# scripts, CJK, emoji, private use, the BOM, control characters (LF only where a line break is meant).
RANGES = [
    (0x20, 0x7E),
    (0x00, 0x1F),
    (0xA0, 0x17F),
    (0x300, 0x36F),
    (0x590, 0x6FF),
    (0x2000, 0x206F),
    (0x3000, 0x30FF),
    (0x4E00, 0x4FFF),
    (0x1F300, 0x1F6FF),
    (0xE000, 0xE0FF),
    (0xFEFF, 0xFEFF),
    (0x10FFF0, 0x10FFFF),
]
SPECIAL = ["\r", "\x00", "\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\u202e", "\t", " "]


def random_text(rng: random.Random, n: int) -> str:
    chars = []
    for _ in range(n):
        if rng.random() < 0.15:
            chars.append(rng.choice(SPECIAL))
        else:
            lo, hi = rng.choice(RANGES)
            chars.append(chr(rng.randint(lo, hi)))
    return "".join(chars)


def random_document(rng: random.Random) -> bytes:
    """Random bytes of one of three kinds: noise, valid UTF-8 text with line breaks, or such text with a
    few bytes overwritten at random (usually invalid UTF-8 somewhere in the middle)."""
    kind = rng.randrange(3)
    if kind == 0:
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
    else:
        lines = [random_text(rng, rng.randrange(0, 30)).replace("\n", " ") for _ in range(rng.randrange(1, 12))]
        data = "\n".join(lines).encode("utf-8") + (b"\n" if rng.random() < 0.5 else b"")
        if kind == 2 and data:
            data = bytearray(data)
            for _ in range(rng.randrange(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            data = bytes(data)
    if data[:2] == b"\x1f\x8b":  # a gzip header: the reader would (rightly) take it for gzip
        data = b"x" + data
    return data


def first_invalid(data: bytes):
    """The independent oracle: (lines, None) or (None, (line number, byte position in the line, byte))."""
    raw_lines = data.split(b"\n")
    if raw_lines[-1] == b"":
        raw_lines.pop()
    lines = []
    for number, raw in enumerate(raw_lines, 1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError as error:
            return None, (number, error.start + 1, raw[error.start])
    return lines, None


@pytest.mark.parametrize("seed", range(300))
def test_corpus_reader_on_random_bytes(tmp_path, seed):
    rng = random.Random(seed)
    data = random_document(rng)
    path = tmp_path / "corpus.txt"
    path.write_bytes(data)
    lines, bad = first_invalid(data)
    if bad is None:
        assert list(read_lines(path)) == [line.replace("\r", "") for line in lines]
    else:
        number, position, byte = bad
        with pytest.raises(UserError) as error:
            list(read_lines(path))
        message = str(error.value)
        assert message.startswith(
            f"{path} line {number}: invalid UTF-8 at byte {position} of the line (0x{byte:02x})"
        ), message
        assert "\n" not in message


@pytest.fixture(scope="module")
def run(translator_run):
    return translator_run


def cli(argv, stdin: bytes):
    import translate

    out, err = io.StringIO(), io.StringIO()
    status = translate.main(
        [str(a) for a in argv], stdin=io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"), stdout=out, stderr=err
    )
    return status, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("seed", range(12))
def test_translate_cli_on_random_bytes(run, tmp_path, seed):
    rng = random.Random(1000 + seed)
    data = b"".join(random_document(rng) + b"\n" for _ in range(4))
    out_path = tmp_path / "out.txt"
    status, out, err = cli(["--model", run["dir"], "--beam-size", 1, "--output", out_path], data)
    lines, bad = first_invalid(data)
    if bad is None:
        assert status == 0, err
        written = out_path.read_bytes().decode("utf-8").split("\n")
        assert written[-1] == "" and len(written) - 1 == len(lines)
    else:
        number, position, byte = bad
        assert status == 2
        assert (
            err == f"error: <stdin>, line {number}: not valid UTF-8 (byte 0x{byte:02x} at byte {position} of the "
            "line); expected UTF-8 text\n"
        )
        assert not out_path.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_translate_cli_on_random_unicode(run):
    rng = random.Random(7)
    lines = [random_text(rng, rng.randrange(0, 40)).replace("\n", " ") for _ in range(300)]
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]  # a final CR closes a CRLF line ending
    status, out, err = cli(["--model", run["dir"], "--beam-size", 2], "\n".join(lines).encode("utf-8"))
    assert status == 0, err
    assert out.count("\n") == len(lines) and out.endswith("\n")


def test_translator_on_random_strings_with_lone_surrogates(run):
    from nmt.decode.translator import load_run

    translator = load_run(run["dir"])
    rng = random.Random(11)
    sentences = [random_text(rng, rng.randrange(0, 20)) + rng.choice(["", "\ud800", "\udfff x"]) for _ in range(100)]
    translations = translator.translate(sentences, translator.settings(beam_size=2, nbest=2))
    assert len(translations) == len(sentences)
    for sentence, translation in zip(sentences, translations):
        assert translation.source == sentence and len(translation.hypotheses) == 2
        assert all(isinstance(h.text, str) for h in translation.hypotheses)

"""Reading, validating, splitting and filtering parallel corpora; the built-in numbers corpus;
scripts/prepare_data.py."""

from __future__ import annotations

import dataclasses
import gzip
import importlib.util
import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from nmt.errors import UserError
from nmt.text import corpus as corpus_mod
from nmt.text import toy_corpus
from nmt.text.corpus import (
    Corpus,
    CorpusConfig,
    CorpusSplit,
    FilePairSource,
    MemorySource,
    TsvSource,
    filter_split,
    split_indices,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def write_gz(path: Path, data: bytes) -> Path:
    with gzip.open(path, "wb") as f:
        f.write(data)
    return path


def tf_lines(ds) -> list[tuple[str, str]]:
    return [(s.decode("utf-8"), t.decode("utf-8")) for s, t in ds.as_numpy_iterator()]


# --------------------------------------------------------------------------------------------
# Two aligned files


def test_two_files_read_in_order(tmp_path):
    src = write(tmp_path / "a.en", b"one\ntwo words\nthree\n")
    tgt = write(tmp_path / "a.de", "eins\nzwei Wörter\ndrei".encode())  # no final newline
    pairs = list(FilePairSource(src, tgt).pairs())
    assert pairs == [("one", "eins"), ("two words", "zwei Wörter"), ("three", "drei")]


def test_gzip_input_detected_by_content(tmp_path):
    text_en = b"a cat\n\nthe dog .\n"
    text_de = b"eine Katze\n\nder Hund .\n"
    plain = FilePairSource(write(tmp_path / "p.en", text_en), write(tmp_path / "p.de", text_de))
    # One side gzipped with a .gz name, the other gzipped without one.
    gz = FilePairSource(write_gz(tmp_path / "g.en.gz", text_en), write_gz(tmp_path / "g.de", text_de))
    expected = [("a cat", "eine Katze"), ("", ""), ("the dog .", "der Hund .")]
    assert list(plain.pairs()) == expected
    assert list(gz.pairs()) == expected
    assert tf_lines(gz.tf_dataset()) == expected


@pytest.mark.parametrize("gz", [False, True])
def test_python_pairs_match_the_tf_data_pairs(tmp_path, gz):
    # Carriage returns (also lone ones), empty lines, unicode line separators, no final newline: the
    # Python checks (pairs) must see exactly the lines the training stream (tf_dataset) sees.
    src = "a\r\nb\rc\n\n  \nx\u2028y\x0bz\n\u00e9\u0301\nlast".encode()
    tgt = "1\n2\r\n\r\n4\n\ufeff5\n6\x85\n7\r".encode()
    source = FilePairSource(
        (write_gz if gz else write)(tmp_path / "f.en", src), (write_gz if gz else write)(tmp_path / "f.de", tgt)
    )
    pairs = list(source.pairs())
    assert pairs == tf_lines(source.tf_dataset())
    assert len(pairs) == 7 and pairs[0] == ("a", "1") and pairs[1] == ("bc", "2") and pairs[-1] == ("last", "7")


@pytest.mark.parametrize("short_side", ["src", "tgt"])
def test_misaligned_files_name_both_counts(tmp_path, short_side):
    long_text, short_text = b"1\n2\n3\n4\n5\n", b"1\n2\n3\n"
    src = write(tmp_path / "x.en", long_text if short_side == "tgt" else short_text)
    tgt = write(tmp_path / "x.de", short_text if short_side == "tgt" else long_text)
    with pytest.raises(UserError) as e:
        list(FilePairSource(src, tgt).pairs())
    msg = str(e.value)
    n_src, n_tgt = (5, 3) if short_side == "tgt" else (3, 5)
    assert f"{src} has {n_src} lines but {tgt} has {n_tgt}" in msg
    assert "\n" not in msg


def test_misaligned_files_fail_corpus_construction(tmp_path):
    write(tmp_path / "train.en", b"a\nb\n")
    write(tmp_path / "train.de", b"a\n")
    with pytest.raises(UserError, match=r"has 2 lines but .*train\.de has 1"):
        Corpus(CorpusConfig(dir=str(tmp_path), src_lang="en", tgt_lang="de"))


@pytest.mark.parametrize("gz", [False, True])
def test_invalid_utf8_names_file_line_and_byte(tmp_path, gz):
    data = b"fine\nstill fine\n" + b"bad \xff here\n"
    path = (write_gz if gz else write)(tmp_path / "bad.en", data)
    other = write(tmp_path / "ok.de", b"a\nb\nc\n")
    with pytest.raises(UserError) as e:
        list(FilePairSource(other, path).pairs())
    assert str(e.value) == (
        f"{path} line 3: invalid UTF-8 at byte 5 of the line (0xff); corpus files must be UTF-8 text"
    )


def test_missing_and_empty_files(tmp_path):
    empty = write(tmp_path / "empty.en", b"")
    other = write(tmp_path / "ok.de", b"x\n")
    with pytest.raises(UserError, match=r"file not found: .*nope\.en"):
        FilePairSource(tmp_path / "nope.en", other)
    with pytest.raises(UserError, match=r"file is empty: .*empty\.en"):
        FilePairSource(empty, other)
    gz_empty = write_gz(tmp_path / "empty.gz", b"")
    with pytest.raises(UserError, match="no sentence pairs"):
        FilePairSource(gz_empty, write_gz(tmp_path / "empty2.gz", b"")).count()


def test_truncated_gzip_is_a_user_error(tmp_path):
    full = gzip.compress(("line\n" * 5000).encode())
    path = write(tmp_path / "cut.gz", full[: len(full) // 2])
    with pytest.raises(UserError, match=r"cut\.gz line \d+: cannot read the gzip data"):
        FilePairSource(path, path).count()


# --------------------------------------------------------------------------------------------
# TSV


def test_tsv_tatoeba_format_columns_and_extra_columns(tmp_path):
    path = write(
        tmp_path / "deu.txt",
        b"Hi.\tHallo!\tCC-BY 2.0 (France) Attribution: tatoeba.org #538123\n"
        b"Run!\tLauf!\tCC-BY 2.0 (France) Attribution: tatoeba.org #906328\textra\n",
    )
    assert list(TsvSource(path, 1, 2).pairs()) == [("Hi.", "Hallo!"), ("Run!", "Lauf!")]
    assert list(TsvSource(path, 2, 1).pairs()) == [("Hallo!", "Hi."), ("Lauf!", "Run!")]
    assert tf_lines(TsvSource(path, 2, 1).tf_dataset()) == [("Hallo!", "Hi."), ("Lauf!", "Run!")]


def test_tsv_too_few_columns(tmp_path):
    path = write(tmp_path / "c.tsv", b"a\tb\tc\nd\te\n")
    assert len(list(TsvSource(path, 1, 2).pairs())) == 2
    with pytest.raises(UserError) as e:
        list(TsvSource(path, 1, 3).pairs())
    msg = str(e.value)
    assert "c.tsv line 2" in msg and "at least 3" in msg and "found 2" in msg


def test_tsv_blank_line_has_too_few_columns(tmp_path):
    path = write(tmp_path / "b.tsv", b"a\tb\n\nc\td\n")
    with pytest.raises(UserError, match=r"b\.tsv line 2: .*found 1"):
        list(TsvSource(path, 1, 2).pairs())


def test_tsv_gzip(tmp_path):
    path = write_gz(tmp_path / "t.tsv.gz", b"x\ty\tz\nu\tv\tw\n")
    assert list(TsvSource(path, 3, 1).pairs()) == [("z", "x"), ("w", "u")]
    assert tf_lines(TsvSource(path, 3, 1).tf_dataset()) == [("z", "x"), ("w", "u")]


# --------------------------------------------------------------------------------------------
# Filters, with a tokenizer whose lengths are obvious: one token per whitespace-separated word.


class _WordTokenizer:
    def encode_batch(self, texts):
        return [[5] * len(t.split()) for t in texts]


class _WordTokenizers:
    src = tgt = _WordTokenizer()


FILTER_PAIRS = [
    ("a b", "x y"),  # 0 kept
    ("", "x"),  # 1 empty
    ("   ", "x"),  # 2 whitespace only
    ("a", "\t "),  # 3 whitespace only (target)
    ("a b c d e f", "x"),  # 4 too long (6 > 5), counted once, under the first reason
    ("a", "x y z"),  # 5 ratio 3 > 2
    ("a b", "x y"),  # 6 duplicate of 0
    ("dev s", "dev t"),  # 7 same as a dev pair
    ("a b c", "x y"),  # 8 kept: ratio 1.5
    ("a b c d", "x y"),  # 9 kept: ratio exactly 2 is not above 2
    ("a b c d e", "v w x y z"),  # 10 kept: exactly max_len
]


def test_filters_count_every_reason():
    split = CorpusSplit("train", MemorySource(FILTER_PAIRS))
    out = filter_split(split, _WordTokenizers(), max_len=5, max_ratio=2, dedup=True, heldout_pairs=[("dev s", "dev t")])
    s = out.summary
    assert s.read == 11 and s.kept == 4
    assert s.dropped == {"empty": 3, "too_long": 1, "ratio": 1, "duplicate": 1, "heldout_duplicate": 1}
    assert s.kept + s.total_dropped == s.read
    kept = [FILTER_PAIRS[i] for i in (0, 8, 9, 10)]
    assert list(out.pairs()) == kept
    assert tf_lines(out.tf_pairs()) == kept
    line = s.format()
    assert line.startswith("train: 11 pairs read, 4 kept, 7 dropped (")
    for text in (
        "3 empty or whitespace-only side",
        "1 longer than 5 subword tokens",
        "1 length ratio above 2",
        "1 exact duplicates",
        "1 identical to a dev/test pair",
    ):
        assert text in line


def test_filters_without_dedup_and_ratio():
    split = CorpusSplit("train", MemorySource(FILTER_PAIRS))
    out = filter_split(split, _WordTokenizers(), max_len=5, max_ratio=0, dedup=False)
    assert out.summary.dropped == {"empty": 3, "too_long": 1, "ratio": 0, "duplicate": 0, "heldout_duplicate": 0}
    assert out.summary.kept == 7
    assert "ratio" not in out.summary.format() and "duplicate" not in out.summary.format()


def test_length_filters_alone_drop_and_count_by_the_same_rules():
    """Without dedup the length filters run vectorized over a block: the same decisions and counts as the
    per-pair rules (drop_reason), and the kept pairs' padded lengths max(source, target + 1) counted."""
    split = CorpusSplit("train", MemorySource(FILTER_PAIRS))
    out = filter_split(split, _WordTokenizers(), max_len=5, max_ratio=2, dedup=False, chunk=4)
    assert out.summary.dropped == {"empty": 3, "too_long": 1, "ratio": 1, "duplicate": 0, "heldout_duplicate": 0}
    kept = [FILTER_PAIRS[i] for i in (0, 6, 7, 8, 9, 10)]
    assert list(out.pairs()) == kept
    assert out.length_counts == Counter(max(len(s.split()), len(t.split()) + 1) for s, t in kept)
    with_dedup = filter_split(
        split, _WordTokenizers(), max_len=5, max_ratio=2, dedup=True, heldout_pairs=[("dev s", "dev t")]
    )
    deduped = [FILTER_PAIRS[i] for i in (0, 8, 9, 10)]  # the per-pair path (dedup) counts the same way
    assert with_dedup.length_counts == Counter(max(len(s.split()), len(t.split()) + 1) for s, t in deduped)


def test_corpus_filtered_train_uses_config(tmp_path):
    write(tmp_path / "train.en", b"a b\n\na b\nq\n" + b"w " * 8 + b"\n")
    write(tmp_path / "train.de", b"x y\nz\nx y\nr\nv\n")
    write(tmp_path / "dev.en", b"q\n")
    write(tmp_path / "dev.de", b"r\n")
    cfg = CorpusConfig(dir=str(tmp_path), src_lang="en", tgt_lang="de", max_len=4, max_ratio=0, dedup=True)
    c = Corpus(cfg)
    assert c.test is None and len(c.dev) == 1
    out = c.filtered_train(_WordTokenizers())
    assert out.summary.dropped == {"empty": 1, "too_long": 1, "ratio": 0, "duplicate": 1, "heldout_duplicate": 1}
    assert list(out.pairs()) == [("a b", "x y")]


# --------------------------------------------------------------------------------------------
# Splitting a corpus that comes as one file


def _tsv_corpus(tmp_path, n=200) -> Path:
    lines = "".join(f"src {i}\ttgt {i}\tattribution #{i}\n" for i in range(n))
    return write(tmp_path / "all.tsv", lines.encode())


def test_single_file_split_is_a_seeded_partition(tmp_path):
    path = _tsv_corpus(tmp_path)
    cfg = CorpusConfig(train_tsv=str(path), dev_size=20, test_size=0.05, split_seed=3)
    c = Corpus(cfg)
    parts = {name: list(c.split(name).pairs()) for name in ("train", "dev", "test")}
    assert [len(parts[n]) for n in ("train", "dev", "test")] == [170, 20, 10]
    every = [p for n in ("train", "dev", "test") for p in parts[n]]
    assert Counter(every) == Counter((f"src {i}", f"tgt {i}") for i in range(200))
    for pairs in parts.values():  # file order is kept inside each split
        idx = [int(s.split()[1]) for s, _ in pairs]
        assert idx == sorted(idx)
    for name in ("train", "dev", "test"):  # the streaming reader agrees
        assert tf_lines(c.split(name).tf_pairs()) == parts[name]
    again = Corpus(cfg)
    assert list(again.dev.pairs()) == parts["dev"] and list(again.test.pairs()) == parts["test"]
    other = Corpus(dataclasses.replace(cfg, split_seed=4))
    assert list(other.dev.pairs()) != parts["dev"]


def test_split_indices_sizes_and_errors():
    dev, test = split_indices(1000, 0.1, 25, seed=0)
    assert len(dev) == 100 and len(test) == 25 and not set(dev) & set(test)
    assert split_indices(1000, 0.1, 25, seed=0) == (dev, test)
    with pytest.raises(UserError, match="cannot hold out"):
        split_indices(10, 5, 5, seed=0)


def test_no_split_when_dev_is_given(tmp_path):
    path = _tsv_corpus(tmp_path, 30)
    c = Corpus(CorpusConfig(train_tsv=str(path), dev_tsv=str(path)))
    assert len(c.train) == 30 and len(c.dev) == 30 and c.test is None


# --------------------------------------------------------------------------------------------
# Configuration


def test_config_from_plain_dict_and_fields():
    d = {"train_src": "a.en", "train_tgt": "a.de", "max_len": 50, "max_ratio": 2.5, "dedup": True}
    cfg = CorpusConfig(**d)
    assert cfg.max_len == 50 and cfg.dedup is True
    names = {f.name for f in dataclasses.fields(CorpusConfig)}
    assert {"train_src", "train_tsv", "src_col", "tgt_col", "max_len", "max_ratio", "dedup", "split_seed"} <= names
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.max_len = 3


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"src_col": 0}, "corpus.src_col"),
        ({"src_col": 2, "tgt_col": 2}, "corpus.src_col and corpus.tgt_col"),
        ({"dev_size": 1.5}, "corpus.dev_size"),
        ({"test_size": -1}, "corpus.test_size"),
        ({"max_len": 0}, "corpus.max_len"),
        ({"max_ratio": 0.5}, "corpus.max_ratio"),
        ({"dedup": "yes"}, "corpus.dedup"),
        ({"train_src": "a"}, "corpus.train_tgt"),
        ({"dir": "d", "src_lang": "en", "tgt_lang": "de", "train_tsv": "x"}, "train data is given twice"),
        ({"dir": "d"}, "corpus.dir"),
        ({"train_src": 3, "train_tgt": "b"}, "corpus.train_src"),
    ],
)
def test_config_errors_name_the_field(kwargs, field):
    with pytest.raises(UserError) as e:
        CorpusConfig(**kwargs)
    assert field in str(e.value) and "\n" not in str(e.value)


def test_default_corpus_is_generated_numbers(tmp_path, monkeypatch):
    target = tmp_path / "numbers"
    monkeypatch.setattr(corpus_mod, "DEFAULT_CORPUS_DIR", target)
    monkeypatch.setattr(toy_corpus, "DEFAULT_SIZES", {"train": 300, "dev": 20, "test": 20})
    c = Corpus(CorpusConfig())
    assert (len(c.train), len(c.dev), len(c.test)) == (300, 20, 20)
    assert sorted(p.name for p in target.iterdir()) == sorted(
        f"{s}.{lang}" for s in ("train", "dev", "test") for lang in ("en", "de")
    )


def test_dir_accepts_multi30k_names(multi30k_dir):
    c = Corpus(CorpusConfig(dir=str(multi30k_dir), src_lang="en", tgt_lang="fr"))
    assert (len(c.train), len(c.dev), len(c.test)) == (29000, 1014, 1000)


# --------------------------------------------------------------------------------------------
# The built-in numbers corpus, against a table of known German and English number words


GERMAN = {
    0: "null",
    1: "eins",
    2: "zwei",
    6: "sechs",
    7: "sieben",
    10: "zehn",
    11: "elf",
    12: "zwölf",
    13: "dreizehn",
    16: "sechzehn",
    17: "siebzehn",
    20: "zwanzig",
    21: "einundzwanzig",
    24: "vierundzwanzig",
    30: "dreißig",
    31: "einunddreißig",
    57: "siebenundfünfzig",
    60: "sechzig",
    66: "sechsundsechzig",
    70: "siebzig",
    77: "siebenundsiebzig",
    99: "neunundneunzig",
    100: "einhundert",
    101: "einhunderteins",
    110: "einhundertzehn",
    116: "einhundertsechzehn",
    200: "zweihundert",
    342: "dreihundertzweiundvierzig",
    700: "siebenhundert",
    1000: "eintausend",
    1001: "eintausendeins",
    1100: "eintausendeinhundert",
    1234: "eintausendzweihundertvierunddreißig",
    2000: "zweitausend",
    10000: "zehntausend",
    11000: "elftausend",
    17017: "siebzehntausendsiebzehn",
    21000: "einundzwanzigtausend",
    21021: "einundzwanzigtausendeinundzwanzig",
    100000: "einhunderttausend",
    101000: "einhunderteintausend",
    101101: "einhunderteintausendeinhunderteins",
    200000: "zweihunderttausend",
    342017: "dreihundertzweiundvierzigtausendsiebzehn",
    500001: "fünfhunderttausendeins",
    999999: "neunhundertneunundneunzigtausendneunhundertneunundneunzig",
}

ENGLISH = {
    0: "zero",
    1: "one",
    13: "thirteen",
    15: "fifteen",
    20: "twenty",
    21: "twenty-one",
    40: "forty",
    99: "ninety-nine",
    100: "one hundred",
    101: "one hundred one",
    342: "three hundred forty-two",
    1000: "one thousand",
    1001: "one thousand one",
    21000: "twenty-one thousand",
    342017: "three hundred forty-two thousand seventeen",
    999999: "nine hundred ninety-nine thousand nine hundred ninety-nine",
}


@pytest.mark.parametrize("n", sorted(GERMAN))
def test_german_number_words_table(n):
    assert toy_corpus.german(n) == GERMAN[n]


@pytest.mark.parametrize("n", sorted(ENGLISH))
def test_english_number_words_table(n):
    assert toy_corpus.english(n) == ENGLISH[n]


# An independent reading of German numerals: split at "tausend" and "hundert", then read the
# rest. "eins" is only allowed at the very end, "ein" only inside; anything else is rejected.
_DE_UNIT_INSIDE = {w: i for i, w in enumerate("_ ein zwei drei vier fünf sechs sieben acht neun".split()) if i}
_DE_UNIT_END = dict(_DE_UNIT_INSIDE, eins=1)
del _DE_UNIT_END["ein"]
_DE_TEENS = dict(
    zip("zehn elf zwölf dreizehn vierzehn fünfzehn sechzehn siebzehn achtzehn neunzehn".split(), range(10, 20))
)
_DE_TENS = dict(zip("zwanzig dreißig vierzig fünfzig sechzig siebzig achtzig neunzig".split(), range(20, 100, 10)))


def _read_de_below_100(w: str, end: bool) -> int:
    if w in _DE_TEENS:
        return _DE_TEENS[w]
    if w in _DE_TENS:
        return _DE_TENS[w]
    units = _DE_UNIT_END if end else _DE_UNIT_INSIDE
    if w in units:
        return units[w]
    u, sep, t = w.partition("und")
    if sep and u in _DE_UNIT_INSIDE and t in _DE_TENS:
        return _DE_UNIT_INSIDE[u] + _DE_TENS[t]
    raise ValueError(w)


def _read_de_below_1000(w: str, end: bool) -> int:
    h, sep, rest = w.partition("hundert")
    if not sep:
        return _read_de_below_100(w, end)
    if h not in _DE_UNIT_INSIDE:
        raise ValueError(w)
    return 100 * _DE_UNIT_INSIDE[h] + (_read_de_below_100(rest, end) if rest else 0)


def read_german(word: str) -> int:
    if word == "null":
        return 0
    th, sep, rest = word.partition("tausend")
    if not sep:
        return _read_de_below_1000(word, end=True)
    return 1000 * _read_de_below_1000(th, end=False) + (_read_de_below_1000(rest, end=True) if rest else 0)


_EN_WORDS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen".split()
    )
}
_EN_WORDS.update(dict(zip("twenty thirty forty fifty sixty seventy eighty ninety".split(), range(20, 100, 10))))


def read_english(words: list[str]) -> int:
    total = current = 0
    for w in words:
        for part in w.split("-"):
            if part == "hundred":
                current *= 100
            elif part == "thousand":
                total, current = total + current * 1000, 0
            else:
                current += _EN_WORDS[part]
    return total + current


def numbers_in_english(sentence: str) -> list[int]:
    out, run = [], []
    for w in sentence.rstrip(".").split() + ["<end>"]:
        if all(p in _EN_WORDS or p in ("hundred", "thousand") for p in w.split("-")):
            run.append(w)
        elif run:
            out.append(read_english(run))
            run = []
    return out


def numbers_in_german(sentence: str) -> list[int]:
    out = []
    for w in sentence.replace(",", " ").rstrip(".").split():
        try:
            out.append(read_german(w))
        except ValueError:
            pass
    return out


def test_german_reads_back_for_many_numbers():
    rng = random.Random(0)
    numbers = list(range(0, 2200)) + [rng.randrange(1_000_000) for _ in range(5000)] + [999_999, 100_001, 1_000, 10_001]
    for n in numbers:
        assert read_german(toy_corpus.german(n)) == n, n
        assert read_english(toy_corpus.english(n).split()) == n, n


def test_numbers_corpus_pairs_translate_each_other(numbers_corpus):
    frames_seen = set()
    for pairs in numbers_corpus.values():
        for en, de in pairs:
            a, b = numbers_in_english(en), numbers_in_german(de)
            assert a == b and 1 <= len(a) <= 2, (en, de)
            assert all(0 <= n <= 999_999 for n in a)
            if "comes" in en:
                assert a[1] == a[0] + 1
            if "greater" in en:
                assert a[0] > a[1] and "größer" in de and de.endswith(" ist.")
            if "less" in en:
                assert a[0] < a[1] and "kleiner" in de
            frames_seen.add(re.sub(r"[a-z -]+", "#", en)[:12])
            assert de[:1].isupper() or len(de.split()) == 1
    assert len(frames_seen) >= 6


def test_numbers_corpus_is_disjoint_and_deterministic(numbers_corpus):
    sizes = {"train": 3000, "dev": 100, "test": 100}
    assert {k: len(v) for k, v in numbers_corpus.items()} == sizes
    srcs = {k: {s for s, _ in v} for k, v in numbers_corpus.items()}
    assert sum(len(s) for s in srcs.values()) == 3200  # unique within and across splits
    assert toy_corpus.generate(seed=7, sizes=sizes) == numbers_corpus
    assert toy_corpus.generate(seed=8, sizes=sizes)["dev"] != numbers_corpus["dev"]
    # All magnitudes occur: numbers of every length from 1 to 6 digits.
    digits = {len(str(n)) for en, _ in numbers_corpus["train"] for n in numbers_in_english(en)}
    assert digits == {1, 2, 3, 4, 5, 6}


def test_numbers_corpus_max_digits_and_limits():
    small = toy_corpus.generate(seed=1, sizes={"train": 150, "dev": 10, "test": 10}, max_digits=2)
    assert all(n < 100 for pairs in small.values() for en, _ in pairs for n in numbers_in_english(en))
    with pytest.raises(UserError, match="max_digits"):
        toy_corpus.generate(sizes={"train": 10}, max_digits=7)
    with pytest.raises(UserError, match="at most"):
        toy_corpus.generate(sizes={"train": 10_000}, max_digits=2)


def test_default_numbers_corpus_is_written_whole_and_distinct(tmp_path):
    """ensure_written (what train.py does on first use) writes six aligned files of the default sizes, big
    enough for the README's BLEU (>= 20,000 training pairs, 500 dev and test), and no dev or test source
    sentence is among the training ones' (held-out data)."""
    out = toy_corpus.ensure_written(tmp_path / "numbers")
    lines = {
        f"{s}.{lang}": (out / f"{s}.{lang}").read_text(encoding="utf-8").splitlines()
        for s in ("train", "dev", "test")
        for lang in ("en", "de")
    }
    for split in ("train", "dev", "test"):
        assert len(lines[f"{split}.en"]) == len(lines[f"{split}.de"]) == toy_corpus.DEFAULT_SIZES[split]
    assert len(lines["train.en"]) >= 20_000 and len(lines["dev.en"]) >= 500 and len(lines["test.en"]) >= 500
    train = set(zip(lines["train.en"], lines["train.de"]))
    held_out = list(zip(lines["dev.en"], lines["dev.de"])) + list(zip(lines["test.en"], lines["test.de"]))
    assert sum(pair in train for pair in held_out) <= len(held_out) // 20, "dev/test pairs repeat training pairs"
    before = (out / "train.en").stat().st_mtime_ns
    toy_corpus.ensure_written(out)  # already there: not rewritten
    assert (out / "train.en").stat().st_mtime_ns == before


# --------------------------------------------------------------------------------------------
# scripts/prepare_data.py


def _prepare_main():
    spec = importlib.util.spec_from_file_location("prepare_data", REPO_ROOT / "scripts" / "prepare_data.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main


def test_prepare_numbers(tmp_path, capsys):
    rc = _prepare_main()(
        ["--data-dir", str(tmp_path), "numbers", "--train-size", "300", "--dev-size", "20", "--test-size", "10"]
    )
    assert rc == 0
    out = capsys.readouterr().out
    for split, n in (("train", 300), ("dev", 20), ("test", 10)):
        for lang in ("en", "de"):
            assert len((tmp_path / "numbers" / f"{split}.{lang}").read_text(encoding="utf-8").splitlines()) == n
            assert re.search(rf"wrote .*numbers/{split}\.{lang} \({n} lines\)", out)


def test_prepare_multi30k_from_local_source(tmp_path, capsys, multi30k_dir):
    rc = _prepare_main()(["--data-dir", str(tmp_path), "multi30k", "--source", str(multi30k_dir)])
    assert rc == 0
    out = capsys.readouterr().out
    names = {"train": "train", "dev": "val", "test": "test2016"}
    for split, orig in names.items():
        for lang in ("en", "de", "fr", "cs"):
            ours = (tmp_path / "multi30k" / f"{split}.{lang}").read_bytes()
            theirs = (multi30k_dir / f"{orig}.{lang}").read_bytes()
            assert ours == theirs.replace(b"\r", b"") + (b"" if theirs.endswith(b"\n") else b"\n")
            n = ours.count(b"\n")
            assert f"multi30k/{split}.{lang} ({n:,} lines)" in out
    assert "train.en (29,000 lines)" in out and "dev.cs (1,014 lines)" in out and "test.fr (1,000 lines)" in out


def test_prepare_multi30k_source_missing_file(tmp_path, capsys):
    (tmp_path / "src").mkdir()
    write(tmp_path / "src" / "train.en", b"a\n")
    rc = _prepare_main()(["--data-dir", str(tmp_path / "out"), "multi30k", "--source", str(tmp_path / "src")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: --source") and "train.de" in err and err.count("\n") == 1


def test_prepare_multi30k_download_failure_suggests_source(tmp_path):
    env = {"NMT_MULTI30K_URL": "http://127.0.0.1:9/nothing", "PATH": "/usr/bin:/bin"}
    r = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "prepare_data.py"), "--data-dir", str(tmp_path), "multi30k"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 2
    assert r.stderr.startswith("error: could not download http://127.0.0.1:9/nothing/train.en.gz")
    assert "--source" in r.stderr and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert not (tmp_path / "multi30k" / "train.en").exists()


def test_prepare_tsv_split(tmp_path, capsys):
    path = _tsv_corpus(tmp_path, 100)
    rc = _prepare_main()(
        [
            "--data-dir",
            str(tmp_path / "data"),
            "tsv",
            str(path),
            "--src-col",
            "2",
            "--tgt-col",
            "1",
            "--src-lang",
            "de",
            "--tgt-lang",
            "en",
            "--dev-size",
            "10",
            "--test-size",
            "0.05",
            "--seed",
            "5",
        ]
    )
    assert rc == 0
    d = tmp_path / "data" / "all"
    got = {}
    for split in ("train", "dev", "test"):
        de = (d / f"{split}.de").read_text(encoding="utf-8").splitlines()
        en = (d / f"{split}.en").read_text(encoding="utf-8").splitlines()
        assert [x.replace("tgt", "src") for x in de] == en  # aligned, columns swapped as asked
        got[split] = en
    assert [len(got[s]) for s in ("train", "dev", "test")] == [85, 10, 5]
    assert sorted(sum(got.values(), [])) == sorted(f"src {i}" for i in range(100))
    # The same split as a CorpusConfig with the same seed and sizes.
    c = Corpus(CorpusConfig(train_tsv=str(path), dev_size=10, test_size=0.05, split_seed=5))
    assert [s for s, _ in c.dev.pairs()] == got["dev"]
    assert "all/train.de (85 lines)" in capsys.readouterr().out


def test_prepare_tsv_missing_column_exits_2(tmp_path, capsys):
    path = write(tmp_path / "x.tsv", b"a\tb\nc\n")
    rc = _prepare_main()(["--data-dir", str(tmp_path), "tsv", str(path), "--src-col", "1", "--tgt-col", "2"])
    err = capsys.readouterr().err
    assert (
        rc == 2
        and err == f"error: {path} line 2: expected at least 2 tab-separated columns (src_col=1, tgt_col=2), found 1\n"
    )


def test_data_dir_keeps_corpora_out_of_git():
    ignore = (REPO_ROOT / "data" / ".gitignore").read_text().split()
    assert "*" in ignore and "!README.md" in ignore and "!.gitignore" in ignore
    assert (REPO_ROOT / "data" / "README.md").is_file()


def test_progress_only_on_a_terminal_or_when_asked(monkeypatch):
    import io

    from nmt.text.progress import Progress

    monkeypatch.delenv("NMT_PROGRESS", raising=False)
    quiet = io.StringIO()  # not a terminal: nothing, even for long work
    with Progress("reading big.txt", total_bytes=1000, stream=quiet, delay=0) as p:
        p.update(1000, 500)
    assert quiet.getvalue() == ""
    monkeypatch.setenv("NMT_PROGRESS", "1")  # asked for
    shown = io.StringIO()
    with Progress("reading big.txt", total_bytes=1000, stream=shown, delay=0) as p:
        p.update(1000, 500)
    text = shown.getvalue()
    assert "reading big.txt" in text and "1,000 lines" in text and "50%" in text
    short = io.StringIO()  # asked for, but the work ends within the delay: nothing
    with Progress("reading small.txt", total_bytes=100, stream=short) as p:
        p.update(10, 50)
    assert short.getvalue() == ""

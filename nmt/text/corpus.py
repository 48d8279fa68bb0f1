"""Parallel corpora: reading, validating, splitting and filtering sentence pairs.

A corpus split is read from one of:

* two aligned plain-text files, one sentence per line (``train_src`` / ``train_tgt``), each
  optionally gzip-compressed (detected from the file's first bytes, not its name);
* one TSV file (``train_tsv``) whose columns ``src_col`` and ``tgt_col`` (numbered from 1, like
  ``cut -f``) hold the two sides; further columns are ignored. This is the Tatoeba / Anki export
  format ``English<TAB>Other language<TAB>attribution`` (``src_col=1, tgt_col=2``);
* a prepared corpus directory (``dir`` with ``src_lang`` / ``tgt_lang``) holding
  ``{train,dev,test}.{lang}`` (``val``/``test2016`` are accepted too, as Multi30k names them).

Lines are read by `nmt.text.textfile.read_lines` with its ``TENSORFLOW`` convention: what TensorFlow's
``TextLineDataset`` sees (split at ``\\n``, every ``\\r`` removed), so the Python checks here and the
streaming ``tf.data`` reader (``CorpusSplit.tf_pairs``) agree line for line. Every mistake is a
one-line ``UserError`` naming the file and line: sides with different line counts (both counts
given), invalid UTF-8 (line and byte), a missing or empty file, a TSV line with too few columns.

A corpus that comes as one file (no dev and no test data given) is split deterministically: a
seeded sample of ``dev_size`` + ``test_size`` line numbers is held out; every split keeps the file
order. Filters apply to the training split only (dev and test are kept whole so that evaluation
sees everything the user wrote); each dropped pair is counted under the first reason that applies,
in this order: an empty or whitespace-only side (no subword tokens), a side longer than ``max_len``
subword tokens, a source/target length ratio above ``max_ratio``, an exact duplicate of an earlier
training pair, a training pair identical to a dev/test pair (the last two only with ``dedup``).
`FilterSummary.format()` is the line the user sees.

Streaming: nothing here holds the corpus in memory. Python passes read line by line; the training
pipeline streams the files through ``tf.data``; what is kept is described by the (small) sorted list
of dropped/held-out line numbers. ``dedup`` keeps one 64-bit hash per distinct pair in memory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nmt.config import SPLITS, CorpusConfig  # noqa: F401  (CorpusConfig re-exported)
from nmt.errors import UserError
from nmt.text.textfile import is_gzip, read_lines

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Where the built-in numbers corpus lives (written on first use, see `nmt.text.toy_corpus`).
DEFAULT_CORPUS_DIR = REPO_ROOT / "data" / "numbers"
DEFAULT_SRC_LANG = "en"
DEFAULT_TGT_LANG = "de"

#: File-name stems accepted for each split inside a corpus directory, in order of preference.
SPLIT_FILE_NAMES = {
    "train": ("train",),
    "dev": ("dev", "val"),
    "test": ("test", "test2016", "test_2016_flickr"),
}

#: Reasons a training pair is dropped, in the order they are checked.
DROP_REASONS = ("empty", "too_long", "ratio", "duplicate", "heldout_duplicate")


def _reason_text(reason: str, max_len: int, max_ratio: float) -> str:
    return {
        "empty": "empty or whitespace-only side",
        "too_long": f"longer than {max_len} subword tokens",
        "ratio": f"length ratio above {max_ratio:g}",
        "duplicate": "exact duplicates",
        "heldout_duplicate": "identical to a dev/test pair",
    }[reason]


# --------------------------------------------------------------------------------------------
# Configuration


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _dir_source(d: Path, split: str, src_lang: str, tgt_lang: str) -> FilePairSource | None:
    if not d.is_dir():
        raise UserError(f"corpus.dir: directory not found: {d} (prepare one with scripts/prepare_data.py)")
    for stem in SPLIT_FILE_NAMES[split]:
        found = []
        for lang in (src_lang, tgt_lang):
            for name in (f"{stem}.{lang}", f"{stem}.{lang}.gz"):
                if (d / name).is_file():
                    found.append(d / name)
                    break
        if len(found) == 2:
            return FilePairSource(found[0], found[1], what=f"corpus.dir {split}")
        if len(found) == 1:
            other = tgt_lang if found[0].name.startswith(f"{stem}.{src_lang}") else src_lang
            raise UserError(
                f"corpus.dir {d}: found {found[0].name} but no {stem}.{other}; the {split} split needs both sides"
            )
    return None


# --------------------------------------------------------------------------------------------
# Files


def check_file(path: str | Path, what: str) -> Path:
    """The path, or a UserError if it does not exist, is not a file, or is empty."""
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"{what}: file not found: {p}")
    if not p.is_file():
        raise UserError(f"{what}: not a regular file: {p}")
    if p.stat().st_size == 0:
        raise UserError(f"{what}: file is empty: {p}")
    return p


# --------------------------------------------------------------------------------------------
# Pair sources


class PairSource:
    """Aligned (source, target) sentence pairs, read in order. Subclasses: files, TSV, memory."""

    _count: int | None = None

    def describe(self) -> str:
        raise NotImplementedError

    def pairs(self, progress: str | None = None) -> Iterator[tuple[str, str]]:
        """All pairs in order; validates as it reads (UserError on the first problem)."""
        raise NotImplementedError

    def tf_dataset(self):
        """A `tf.data.Dataset` of (source, target) `tf.string` scalars, same order and count."""
        raise NotImplementedError

    def count(self) -> int:
        """Number of pairs; reads (and so validates) everything once, then remembers."""
        if self._count is None:
            n = 0
            for _ in self.pairs(progress="checking"):
                n += 1
            if n == 0:
                raise UserError(f"{self.describe()}: no sentence pairs")
            self._count = n
        return self._count


class FilePairSource(PairSource):
    """Two aligned text files, one sentence per line, each optionally gzip-compressed."""

    def __init__(self, src: str | Path, tgt: str | Path, what: str = "corpus"):
        self.src = check_file(src, what)
        self.tgt = check_file(tgt, what)

    def describe(self) -> str:
        return f"{self.src} + {self.tgt}"

    def pairs(self, progress: str | None = None) -> Iterator[tuple[str, str]]:
        src_it = read_lines(self.src, progress=progress)
        tgt_it = read_lines(self.tgt, progress=progress)
        n = 0
        for s in src_it:
            t = next(tgt_it, None)
            if t is None:
                n_src = n + 1 + sum(1 for _ in src_it)
                raise UserError(
                    f"{self.src} has {n_src} lines but {self.tgt} has {n}; the two sides must be aligned line by line"
                )
            n += 1
            yield s, t
        rest = sum(1 for _ in tgt_it)
        if rest:
            raise UserError(
                f"{self.src} has {n} lines but {self.tgt} has {n + rest}; the two sides must be aligned line by line"
            )

    def tf_dataset(self):
        import tensorflow as tf

        def lines(p: Path):
            return tf.data.TextLineDataset(str(p), compression_type="GZIP" if is_gzip(p) else "")

        return tf.data.Dataset.zip((lines(self.src), lines(self.tgt)))


class TsvSource(PairSource):
    """One tab-separated file; columns src_col and tgt_col (from 1) are the two sides."""

    def __init__(self, path: str | Path, src_col: int, tgt_col: int, what: str = "corpus"):
        self.path = check_file(path, what)
        if not (_is_int(src_col) and _is_int(tgt_col) and src_col >= 1 and tgt_col >= 1 and src_col != tgt_col):
            raise UserError(
                f"{what}: src_col and tgt_col must be two different column numbers >= 1, got {src_col!r} and "
                f"{tgt_col!r}"
            )
        self.src_col = src_col
        self.tgt_col = tgt_col

    def describe(self) -> str:
        return f"{self.path} (columns {self.src_col} and {self.tgt_col})"

    def pairs(self, progress: str | None = None) -> Iterator[tuple[str, str]]:
        need = max(self.src_col, self.tgt_col)
        for lineno, line in enumerate(read_lines(self.path, progress=progress), 1):
            cols = line.split("\t")
            if len(cols) < need:
                raise UserError(
                    f"{self.path} line {lineno}: expected at least {need} tab-separated columns "
                    f"(src_col={self.src_col}, tgt_col={self.tgt_col}), found {len(cols)}"
                )
            yield cols[self.src_col - 1], cols[self.tgt_col - 1]

    def tf_dataset(self):
        import tensorflow as tf

        need = max(self.src_col, self.tgt_col)
        s, t = self.src_col - 1, self.tgt_col - 1
        ds = tf.data.TextLineDataset(str(self.path), compression_type="GZIP" if is_gzip(self.path) else "")

        def pick(lines):
            cols = tf.strings.split(lines, "\t").to_tensor(default_value="", shape=[None, need])
            return cols[:, s], cols[:, t]

        # Split a block of lines at once (much faster than line by line), then unbatch.
        return ds.batch(1024).map(pick).unbatch()


class MemorySource(PairSource):
    """Pairs held in memory (tests, small generated corpora)."""

    def __init__(self, pairs: Iterable[Sequence[str]], what: str = "pairs"):
        self._pairs: list[tuple[str, str]] = []
        for i, p in enumerate(pairs, 1):
            if not (isinstance(p, (tuple, list)) and len(p) == 2 and all(isinstance(x, str) for x in p)):
                raise UserError(f"{what} item {i}: expected a (source, target) pair of strings, got {p!r:.80}")
            self._pairs.append((p[0], p[1]))
        if not self._pairs:
            raise UserError(f"{what}: no sentence pairs")
        self._count = len(self._pairs)

    def describe(self) -> str:
        return f"{len(self._pairs)} pairs in memory"

    def pairs(self, progress: str | None = None) -> Iterator[tuple[str, str]]:
        return iter(self._pairs)

    def tf_dataset(self):
        import tensorflow as tf

        src = [s for s, _ in self._pairs]
        tgt = [t for _, t in self._pairs]
        return tf.data.Dataset.from_tensor_slices((tf.constant(src, tf.string), tf.constant(tgt, tf.string)))


# --------------------------------------------------------------------------------------------
# Splits and filters


@dataclass
class FilterSummary:
    """What the filters did to one split: pairs read, kept, and dropped per reason."""

    split: str
    read: int
    kept: int
    dropped: dict[str, int]
    max_len: int
    max_ratio: float
    dedup: bool

    @property
    def total_dropped(self) -> int:
        return sum(self.dropped.values())

    def format(self) -> str:
        shown = {"empty", "too_long"}
        if self.max_ratio:
            shown.add("ratio")
        if self.dedup:
            shown.update(("duplicate", "heldout_duplicate"))
        reasons = [r for r in DROP_REASONS if r in shown or self.dropped.get(r)]
        detail = ", ".join(
            f"{self.dropped.get(r, 0):,} {_reason_text(r, self.max_len, self.max_ratio)}" for r in reasons
        )
        return f"{self.split}: {self.read:,} pairs read, {self.kept:,} kept, {self.total_dropped:,} dropped ({detail})"


def _sorted_unique(xs: Iterable[int]) -> tuple[int, ...]:
    return tuple(sorted(set(int(x) for x in xs)))


class CorpusSplit:
    """One split (train/dev/test): a pair source plus which of its pairs belong to the split.

    ``select`` (sorted line indices, from 0) keeps only those pairs (a held-out dev/test split);
    ``exclude`` drops those (held-out pairs and filtered pairs in the training split). After
    `filter_split`, ``summary`` tells what was dropped, ``max_len`` bounds every kept side and
    ``length_counts`` maps each padded length a kept pair needs, max(source tokens, target tokens + 1),
    to its number of pairs (what the batches of a pass are counted from, `nmt.train.batches`).
    """

    def __init__(
        self,
        name: str,
        source: PairSource,
        select: Iterable[int] | None = None,
        exclude: Iterable[int] | None = None,
        summary: FilterSummary | None = None,
        max_len: int | None = None,
        length_counts: dict[int, int] | None = None,
    ):
        self.name = name
        self.source = source
        self.select = None if select is None else _sorted_unique(select)
        self.exclude = _sorted_unique(exclude or ())
        self.summary = summary
        self.max_len = max_len
        self.length_counts = length_counts

    def __repr__(self) -> str:
        return f"CorpusSplit({self.name!r}, {self.source.describe()}, {len(self)} pairs)"

    def __len__(self) -> int:
        if self.select is not None:
            ex = set(self.exclude)
            return sum(1 for i in self.select if i not in ex)
        return self.source.count() - len(self.exclude)

    def indexed_pairs(self, progress: str | None = None) -> Iterator[tuple[int, str, str]]:
        """(line index from 0, source, target) for each pair of the split, in file order."""
        sel, exc = self.select, self.exclude
        si = ei = 0
        for i, (s, t) in enumerate(self.source.pairs(progress)):
            if sel is not None:
                while si < len(sel) and sel[si] < i:
                    si += 1
                if si >= len(sel) or sel[si] != i:
                    continue
            while ei < len(exc) and exc[ei] < i:
                ei += 1
            if ei < len(exc) and exc[ei] == i:
                continue
            yield i, s, t

    def pairs(self, progress: str | None = None) -> Iterator[tuple[str, str]]:
        for _, s, t in self.indexed_pairs(progress):
            yield s, t

    def sources(self) -> Iterator[str]:
        for _, s, _ in self.indexed_pairs():
            yield s

    def targets(self) -> Iterator[str]:
        for _, _, t in self.indexed_pairs():
            yield t

    def tf_pairs(self):
        """Streaming `tf.data.Dataset` of (source, target) strings of this split, in file order."""
        if self.select is None and not self.exclude:
            return self.source.tf_dataset()
        return self.tf_pair_blocks().map(lambda idx, src, tgt: (src, tgt)).unbatch()

    def tf_pair_blocks(self, keep=None, block: int = 1024):
        """Streaming `tf.data.Dataset` of blocks (line indices from 0 [n], sources [n], targets [n]) of this
        split, in file order: ``block`` lines are read at a time and n <= block of them are the split's
        (its selection, less its exclusions) and pass ``keep``, a function of the indices [n] -> bool [n]
        (None: all). Vectorized over the block: a per-line filter costs ~4x the whole read."""
        import tensorflow as tf

        exclude = tf.constant(self.exclude, tf.int64) if self.exclude else None
        select = tf.constant(self.select, tf.int64) if self.select is not None else None

        def member(sorted_ids, idx):
            pos = tf.searchsorted(sorted_ids, idx)
            pos = tf.minimum(pos, tf.size(sorted_ids, out_type=pos.dtype) - 1)
            return tf.equal(tf.gather(sorted_ids, pos), idx)

        def keep_block(idx, pair):
            ok = tf.ones_like(idx, tf.bool)
            if exclude is not None:
                ok = tf.logical_not(member(exclude, idx))
            if select is not None:
                ok = tf.logical_and(ok, member(select, idx)) if self.select else tf.zeros_like(ok)
            if keep is not None:
                ok = tf.logical_and(ok, keep(idx))
            return tf.boolean_mask(idx, ok), tf.boolean_mask(pair[0], ok), tf.boolean_mask(pair[1], ok)

        return self.source.tf_dataset().enumerate().batch(block).map(keep_block)


def _pair_key(s: str, t: str) -> int:
    h = hashlib.blake2b(s.encode("utf-8"), digest_size=8)
    h.update(b"\x00\t\x00")
    h.update(t.encode("utf-8"))
    return int.from_bytes(h.digest(), "little")


def drop_reason(src_len: int, tgt_len: int, max_len: int, max_ratio: float) -> str | None:
    """Why a pair with these subword lengths is dropped (None: kept), duplicates aside."""
    if src_len == 0 or tgt_len == 0:
        return "empty"
    if src_len > max_len or tgt_len > max_len:
        return "too_long"
    if max_ratio and max(src_len, tgt_len) > max_ratio * min(src_len, tgt_len):
        return "ratio"
    return None


def filter_split(
    split: CorpusSplit,
    tokenizers,
    max_len: int,
    max_ratio: float = 0.0,
    dedup: bool = False,
    heldout_pairs: Iterable[tuple[str, str]] = (),
    chunk: int = 4096,
) -> CorpusSplit:
    """Apply the filters to a split, returning the filtered split with its `FilterSummary`.

    Lengths are counted in subword tokens of ``tokenizers.src`` / ``tokenizers.tgt`` (without
    BOS/EOS). With ``dedup``, a pair equal to an earlier kept pair, or to one of
    ``heldout_pairs`` (dev/test), is dropped too.
    """
    counts = dict.fromkeys(DROP_REASONS, 0)
    dropped: list[int] = []
    heldout = {_pair_key(s, t) for s, t in heldout_pairs} if dedup else set()
    seen: set[int] = set()
    needs: Counter[int] = Counter()  # kept pairs by max(source length, target length + 1)
    read = 0

    def flush(block: list[tuple[int, str, str]]) -> None:
        src_lens = [len(ids) for ids in tokenizers.src.encode_batch([s for _, s, _ in block])]
        tgt_lens = [len(ids) for ids in tokenizers.tgt.encode_batch([t for _, _, t in block])]
        if not dedup:  # the length filters alone, vectorized (drop_reason's rules, in its order)
            la, lb = np.asarray(src_lens), np.asarray(tgt_lens)
            empty = (la == 0) | (lb == 0)
            too_long = ~empty & ((la > max_len) | (lb > max_len))
            ratio = np.zeros_like(empty)
            if max_ratio:
                ratio = ~empty & ~too_long & (np.maximum(la, lb) > max_ratio * np.minimum(la, lb))
            for reason, mask in (("empty", empty), ("too_long", too_long), ("ratio", ratio)):
                counts[reason] += int(mask.sum())
            drop = empty | too_long | ratio
            dropped.extend(int(block[j][0]) for j in np.flatnonzero(drop))
            kept_needs = np.maximum(la, lb + 1)[~drop]
            needs.update(dict(zip(*(x.tolist() for x in np.unique(kept_needs, return_counts=True)))))
            return
        for (i, s, t), a, b in zip(block, src_lens, tgt_lens):
            reason = drop_reason(a, b, max_len, max_ratio)
            if reason is None and dedup:
                key = _pair_key(s, t)
                if key in heldout:
                    reason = "heldout_duplicate"
                elif key in seen:
                    reason = "duplicate"
                else:
                    seen.add(key)
            if reason is not None:
                counts[reason] += 1
                dropped.append(i)
            else:
                needs[max(a, b + 1)] += 1

    block: list[tuple[int, str, str]] = []
    for item in split.indexed_pairs(progress=f"filtering {split.name}"):
        read += 1
        block.append(item)
        if len(block) >= chunk:
            flush(block)
            block = []
    if block:
        flush(block)
    summary = FilterSummary(
        split=split.name,
        read=read,
        kept=read - len(dropped),
        dropped=counts,
        max_len=max_len,
        max_ratio=max_ratio,
        dedup=dedup,
    )
    if read and summary.kept == 0:
        raise UserError(
            f"{split.source.describe()}: the filters drop all {read:,} {split.name} pairs ({summary.format()}); "
            f"raise corpus.max_len (now {max_len}) or corpus.max_ratio (now {max_ratio}), or turn corpus.dedup off"
        )
    return CorpusSplit(
        split.name,
        split.source,
        select=split.select,
        exclude=list(split.exclude) + dropped,
        summary=summary,
        max_len=max_len,
        length_counts=dict(sorted(needs.items())),
    )


def heldout_count(size: float, n: int) -> int:
    """Pairs to hold out: a fraction (float below 1) of n, or a count (int)."""
    if isinstance(size, float) and size < 1:
        return int(round(size * n))
    return int(size)


def split_indices(
    n: int, dev_size: float, test_size: float, seed: int, what: str = "corpus"
) -> tuple[list[int], list[int]]:
    """Seeded choice of held-out line indices: (dev, test), each sorted. Deterministic in (n, sizes, seed)."""
    k_dev, k_test = heldout_count(dev_size, n), heldout_count(test_size, n)
    if k_dev + k_test >= n:
        raise UserError(
            f"{what}: cannot hold out dev_size={dev_size!r} ({k_dev} pairs) and test_size={test_size!r} "
            f"({k_test} pairs) "
            f"from {n} pairs; lower them"
        )
    chosen = random.Random(seed).sample(range(n), k_dev + k_test)
    return sorted(chosen[:k_dev]), sorted(chosen[k_dev:])


def split_sources(cfg: CorpusConfig) -> dict[str, PairSource | None]:
    """The pair source of each split (None where the split is not given). Checks files exist."""
    if not cfg.has_explicit_train():
        if any(getattr(cfg, f"{s}_src") or getattr(cfg, f"{s}_tsv") for s in ("dev", "test")):
            raise UserError(
                "corpus: dev/test data is given but no training data (dir, train_src/train_tgt or train_tsv)"
            )
        from nmt.text import toy_corpus

        toy_corpus.ensure_written(DEFAULT_CORPUS_DIR)
        cfg = dataclasses.replace(
            cfg, dir=str(DEFAULT_CORPUS_DIR), src_lang=DEFAULT_SRC_LANG, tgt_lang=DEFAULT_TGT_LANG
        )
    out: dict[str, PairSource | None] = {}
    for split in SPLITS:
        src, tgt, tsv = getattr(cfg, f"{split}_src"), getattr(cfg, f"{split}_tgt"), getattr(cfg, f"{split}_tsv")
        if src is not None:
            out[split] = FilePairSource(src, tgt, what=f"corpus.{split}_src/{split}_tgt")
        elif tsv is not None:
            out[split] = TsvSource(tsv, cfg.src_col, cfg.tgt_col, what=f"corpus.{split}_tsv")
        elif cfg.dir is not None:
            out[split] = _dir_source(Path(cfg.dir).expanduser(), split, cfg.src_lang, cfg.tgt_lang)
        else:
            out[split] = None
    if out["train"] is None:
        raise UserError(f"corpus.dir {cfg.dir}: no training files train.{cfg.src_lang} and train.{cfg.tgt_lang} found")
    return out


class Corpus:
    """The splits of a corpus described by a `CorpusConfig`, validated on construction.

    ``corpus.train`` / ``.dev`` / ``.test`` are `CorpusSplit` objects (dev/test may be None).
    ``corpus.filtered_train(tokenizers)`` applies the configured filters to the training split.
    """

    def __init__(self, cfg: CorpusConfig | None = None, validate: bool = True):
        self.cfg = cfg = cfg if cfg is not None else CorpusConfig()
        sources = split_sources(cfg)
        if validate:
            for s in sources.values():
                if s is not None:
                    s.count()
        self.heldout = False
        if sources["dev"] is None and sources["test"] is None:
            n = sources["train"].count()
            dev_idx, test_idx = split_indices(
                n, cfg.dev_size, cfg.test_size, cfg.split_seed, what=f"corpus {sources['train'].describe()}"
            )
            self.heldout = True
            self.train = CorpusSplit("train", sources["train"], exclude=dev_idx + test_idx)
            self.dev = CorpusSplit("dev", sources["train"], select=dev_idx) if dev_idx else None
            self.test = CorpusSplit("test", sources["train"], select=test_idx) if test_idx else None
        else:
            self.train = CorpusSplit("train", sources["train"])
            self.dev = CorpusSplit("dev", sources["dev"]) if sources["dev"] is not None else None
            self.test = CorpusSplit("test", sources["test"]) if sources["test"] is not None else None

    def split(self, name: str) -> CorpusSplit | None:
        if name not in SPLITS:
            raise UserError(f"unknown corpus split {name!r}; expected one of {', '.join(SPLITS)}")
        return getattr(self, name)

    def describe(self) -> str:
        parts = []
        for name in SPLITS:
            sp = self.split(name)
            if sp is not None:
                parts.append(f"{name} {len(sp):,} pairs ({sp.source.describe()})")
        text = "corpus: " + "; ".join(parts)
        if self.heldout:
            text += f"; dev/test held out of the training file with split_seed={self.cfg.split_seed}"
        return text

    def filtered_train(self, tokenizers) -> CorpusSplit:
        """The training split after the configured filters; its ``summary`` says what was dropped."""
        heldout: list[tuple[str, str]] = []
        if self.cfg.dedup:
            for sp in (self.dev, self.test):
                if sp is not None:
                    heldout.extend(sp.pairs())
        return filter_split(
            self.train,
            tokenizers,
            max_len=self.cfg.max_len,
            max_ratio=float(self.cfg.max_ratio),
            dedup=self.cfg.dedup,
            heldout_pairs=heldout,
        )


def as_split(pairs_source: Any, name: str = "train") -> CorpusSplit:
    """A `CorpusSplit` from a split, a pair source, or a sequence of (source, target) strings."""
    if isinstance(pairs_source, CorpusSplit):
        return pairs_source
    if isinstance(pairs_source, PairSource):
        return CorpusSplit(name, pairs_source)
    if isinstance(pairs_source, Corpus):
        return pairs_source.train
    if isinstance(pairs_source, (list, tuple)):
        return CorpusSplit(name, MemorySource(pairs_source))
    raise UserError(
        f"expected a corpus split, a pair source or a list of (source, target) pairs, got {type(pairs_source).__name__}"
    )

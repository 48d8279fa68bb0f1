"""The lexical shortlist: which target pieces a batch's search scores at each step.

Scoring the whole target vocabulary at every step (the [rows, H] x [H, V] projection, its softmax and its
top-k) is most of a step's work. A batch's translations use few of the V pieces, and which ones is
predictable from its source pieces: training estimates an IBM Model 1 translation table t(y | x) (Brown et
al. 1993) on the tokenized training pairs and keeps, for every source piece x, the target pieces y of the
largest t(y | x). A batch's search then scores only its vocabulary (`batch_vocabulary`):

    the reserved ids 0..3 (PAD, UNK, BOS, EOS)
    ∪ the `frequent` most frequent target pieces of the training targets
    ∪ for every piece x of the batch's sources, the `per_source` best y of t(y | x)

sorted by id, so ties still go to the lower id. The search is then exactly the full search of a model whose
logits outside that vocabulary are -inf (tested so): its scores are log-probabilities normalized over the
shortlist, not the whole vocabulary (Marian's lexical shortlists and CTranslate2's vocabulary maps do the
same). Forced decoding (`nmt score`) always scores the whole vocabulary.

IBM Model 1, with a NULL source word (id 0, PAD, which no sentence contains) in every source sentence and
t(y | x) uniform at first; each EM iteration:

    c(y | x) = Σ over pairs, Σ over target positions j with y_j = y, source positions i with x_i = x:
               t(y | x) / Σ_i' t(y | x_i')
    t(y | x) = c(y | x) / Σ_y' c(y' | x)

The training pairs are a uniform sample of at most SAMPLE_PAIRS; memory is about 8 bytes per link (Σ
(|x| + 1)·|y| over the sample) plus the pairs' own lists. The table is saved beside the model as RUN_DIR/shortlist.npz:

    translations   int32[V_src, M]   the M best y of every source piece x by t(y | x), best first
                                     (ties: lower id), -1 where x has fewer than M
    frequent       int32[F]          target pieces by their count in the sampled targets, most frequent first
                                     (ties: lower id), every piece that occurs
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nmt.errors import UserError

#: The most training pairs the translation table is estimated from (a uniform sample of larger corpora).
SAMPLE_PAIRS = 50_000
#: EM iterations of IBM Model 1.
ITERATIONS = 5
#: Translations kept per source piece in the file (decode.shortlist may use fewer).
KEPT = 100
#: Pairs whose links are built at once (the memory of `train_table` beyond 8 bytes a link).
CHUNK_PAIRS = 2048
RESERVED_IDS = (0, 1, 2, 3)  # PAD, UNK, BOS, EOS (`nmt.text.tokenizer`)
NULL = 0


@dataclass(frozen=True)
class LexicalTable:
    """A run's shortlist table (see the module docstring): translations int32[V_src, M], frequent int32[F]."""

    translations: np.ndarray
    frequent: np.ndarray

    def __post_init__(self):
        if self.translations.ndim != 2 or self.frequent.ndim != 1:
            raise ValueError(
                f"translations must be [V_src, M] and frequent [F], got {self.translations.shape} and "
                f"{self.frequent.shape}"
            )

    @property
    def src_vocab_size(self) -> int:
        return int(self.translations.shape[0])

    def save(self, path) -> Path:
        """Writes the table to path (an .npz file) atomically."""
        from nmt.files import AtomicFile

        with AtomicFile(path, what="shortlist", binary=True) as f:
            np.savez(f.file, translations=self.translations, frequent=self.frequent)
        return Path(path)

    @classmethod
    def load(cls, path) -> LexicalTable:
        try:
            with np.load(path) as data:
                table = cls(data["translations"].astype(np.int32), data["frequent"].astype(np.int32))
        except (OSError, KeyError, ValueError) as error:
            raise UserError(f"{path}: not a shortlist written by training ({type(error).__name__}: {error})") from None
        return table

    def vocabulary(self, source_ids: Iterable[Sequence[int]], per_source: int, frequent: int) -> np.ndarray:
        """The shortlist of these sources (NumPy; the reference for `batch_vocabulary`): int32[V'], sorted."""
        pieces = sorted({int(i) for ids in source_ids for i in ids if i != NULL})
        parts = [np.asarray(RESERVED_IDS), self.frequent[:frequent]]
        if pieces:
            parts.append(self.translations[pieces, :per_source].ravel())
        ids = np.concatenate(parts)
        return np.unique(ids[ids >= 0]).astype(np.int32)


def train_table(
    pairs: Iterable[tuple[Sequence[int], Sequence[int]]],
    src_vocab_size: int,
    tgt_vocab_size: int,
    iterations: int = ITERATIONS,
    keep: int = KEPT,
    chunk_pairs: int = CHUNK_PAIRS,
) -> LexicalTable:
    """IBM Model 1 on id pairs (source ids without BOS/EOS, target ids likewise); see the module docstring.

    Vectorized over the links (x_i, y_j) of chunk_pairs pairs at a time. What stays in memory is one int32
    index per link (its (x, y) pair) and one int32 group per link (its target position within the chunk),
    about 8 bytes a link, and t over the co-occurring (x, y) pairs."""
    chunks, groups = [], []  # per chunk: link keys (x·V + y, then the pair's index), target positions
    target_counts = np.zeros(tgt_vocab_size, np.int64)
    unique_keys = []
    pending: list = []

    def close_chunk():
        src_parts, tgt_parts, group_parts, targets, positions = [], [], [], [], 0
        for src, tgt in pending:
            src = np.concatenate([[NULL], np.asarray(src, np.int64)])
            tgt = np.asarray(tgt, np.int64)
            src_parts.append(np.tile(src, tgt.size))
            tgt_parts.append(np.repeat(tgt, src.size))
            group_parts.append(np.repeat(np.arange(positions, positions + tgt.size, dtype=np.int32), src.size))
            targets.append(tgt)
            positions += tgt.size
        target_counts[:] += np.bincount(np.concatenate(targets), minlength=tgt_vocab_size)
        keys = np.concatenate(src_parts) * tgt_vocab_size + np.concatenate(tgt_parts)
        unique_keys.append(np.unique(keys))
        chunks.append(keys)
        groups.append((np.concatenate(group_parts), positions))
        pending.clear()

    for src, tgt in pairs:
        if len(tgt):
            pending.append((src, tgt))
            if len(pending) == chunk_pairs:
                close_chunk()
    if pending:
        close_chunk()
    frequent = np.zeros(0, np.int32)
    translations = np.full((src_vocab_size, keep), -1, np.int32)
    if not chunks:
        return LexicalTable(translations, frequent)
    pair_keys = np.unique(np.concatenate(unique_keys))  # every co-occurring (x, y), as x·V + y
    unique_keys.clear()
    for i, keys in enumerate(chunks):
        chunks[i] = np.searchsorted(pair_keys, keys).astype(np.int32)  # each link's (x, y) pair
    pair_src, pair_tgt = pair_keys // tgt_vocab_size, pair_keys % tgt_vocab_size
    table = np.full(pair_keys.size, 1.0 / tgt_vocab_size)  # t(y | x)
    for _ in range(iterations):
        counts = np.zeros(pair_keys.size)  # c(y | x)
        for link_pair, (group, positions) in zip(chunks, groups):
            link_t = table[link_pair]
            share = link_t / np.bincount(group, link_t, minlength=positions)[group]  # the link's share of its y_j
            counts += np.bincount(link_pair, share, minlength=pair_keys.size)
        table = counts / np.bincount(pair_src, counts, minlength=src_vocab_size)[pair_src]
    occurring = np.flatnonzero(target_counts)
    frequent = occurring[np.lexsort((occurring, -target_counts[occurring]))].astype(np.int32)
    order = np.lexsort((pair_tgt, -table, pair_src))  # by source, then t descending, then target id
    sorted_src = pair_src[order]
    rank = np.arange(order.size) - np.searchsorted(sorted_src, sorted_src)  # position within its source piece
    kept = rank < keep
    translations[sorted_src[kept], rank[kept]] = pair_tgt[order][kept]
    translations[NULL] = -1  # NULL is no piece of any source
    return LexicalTable(translations, frequent)


def estimate(pairs: Iterable[tuple[str, str]], tokenizers, seed: int = 0) -> tuple[LexicalTable, int]:
    """The table of text pairs (the training split, after its filters): a uniform sample of at most
    SAMPLE_PAIRS of them, encoded by tokenizers (``.src`` / ``.tgt`` with ``encode_batch`` and ``vocab_size``:
    a `SubwordPair` or `Tokenizers`), then `train_table`. -> (the table, the number of pairs it was
    estimated from)."""
    from nmt.text.subword import Reservoir

    reservoir = Reservoir(SAMPLE_PAIRS, seed)
    for pair in pairs:
        reservoir.offer(pair)
    kept = reservoir.sample()
    src = tokenizers.src.encode_batch([s for s, _ in kept])
    tgt = tokenizers.tgt.encode_batch([t for _, t in kept])
    return train_table(zip(src, tgt), tokenizers.src.vocab_size, tokenizers.tgt.vocab_size), len(kept)


def read_for_run(run_dir) -> LexicalTable | None:
    """The table of a run directory (RUN_DIR/shortlist.npz), or None where the run has none (runs trained
    before shortlists existed decode over the whole vocabulary)."""
    from nmt.rundir import SHORTLIST_FILE

    path = Path(run_dir) / SHORTLIST_FILE
    return LexicalTable.load(path) if path.is_file() else None


def check_table(table: LexicalTable, src_vocab_size: int, tgt_vocab_size: int, what: str = "shortlist") -> None:
    """A one-line UserError unless table fits a model of these vocabulary sizes."""
    ids = np.concatenate([table.translations.ravel(), table.frequent])
    if table.src_vocab_size != src_vocab_size or (ids.size and (ids.max() >= tgt_vocab_size or ids.min() < -1)):
        raise UserError(
            f"{what}: its table is for {table.src_vocab_size} source pieces and target ids up to "
            f"{int(ids.max()) if ids.size else -1}; the model has {src_vocab_size} source and {tgt_vocab_size} "
            "target pieces (the shortlist comes from another run)"
        )


def batch_vocabulary(translations, frequent, source_ids, per_source: int, frequent_count: int):
    """The vocabulary of one batch, as TensorFlow ops: translations int32[V_src, M] and frequent int32[F]
    (a `LexicalTable`'s, as tensors), source_ids int32[B, S] 0-padded -> int32[V'] sorted ascending."""
    import tensorflow as tf

    pieces = tf.boolean_mask(source_ids, tf.not_equal(source_ids, NULL))  # [n]
    pieces, _ = tf.unique(pieces)
    candidates = tf.reshape(tf.gather(translations[:, :per_source], pieces), [-1])  # [n * k]
    ids = tf.concat([tf.constant(RESERVED_IDS, tf.int32), frequent[:frequent_count], candidates], 0)
    ids, _ = tf.unique(tf.boolean_mask(ids, ids >= 0))
    return tf.sort(ids)

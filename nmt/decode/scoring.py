"""Forced decoding: the log-probability a model gives a given translation (``nmt score``).

The score of a pair (x, y) is log P(y, EOS | x) = Σ_t log p(y_t | y_<t, x) over the target's tokens and
the end-of-sentence token, without length penalty. It is computed with the step the search uses
(``model.decode_step``: the same weights, precision and float32 log-softmax, fed the target's tokens
instead of the search's choices), so a hypothesis the search produced scores its search log-probability
(`nmt.decode.search.SearchResult.log_probs`; translate.py's score with --length-penalty 0). An empty
target scores the end-of-sentence token alone. As in translation, a source is cut to its first
max_input_len tokens, and a source without tokens is not encoded: like translate.py, which translates it
as "" with score 0, it gives an empty target log-probability 0 and any other target -inf.

    translator.score(sources, targets)          # [PairScore(log_prob, length)], in input order
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import tensorflow as tf

from nmt.decode.graph import RESERVED
from nmt.decode.search import Reserved
from nmt.errors import UserError


class PairScore(NamedTuple):
    """log_prob: log P(y, EOS | x); length: |y| + 1, the target's tokens and EOS."""

    log_prob: float
    length: int

    @property
    def per_token(self) -> float:
        return self.log_prob / self.length


def forced_log_probs(model, source_ids, target_ids, reserved: Reserved = RESERVED) -> tf.Tensor:
    """source_ids int32[B, S] (PAD on the right); target_ids int32[B, T]: each target's tokens, then EOS,
    then PAD -> float32[B], the sum of the decoder's log-probabilities of the non-PAD target tokens."""
    state = model.encode(source_ids)
    memory = state["memory"]
    batch, steps = tf.shape(target_ids)[0], tf.shape(target_ids)[1]

    def body(t, previous, recurrent, total):
        log_probs, new_state, _ = model.decode_step(previous, {"memory": memory, "recurrent": recurrent})
        token = target_ids[:, t]  # [B]
        picked = tf.gather(tf.cast(log_probs, tf.float32), token, batch_dims=1)  # [B]
        total = total + tf.where(tf.equal(token, reserved.pad), 0.0, picked)
        return t + 1, token, new_state["recurrent"], total

    start = (
        tf.constant(0),
        tf.fill([batch], tf.constant(reserved.bos, tf.int32)),
        state["recurrent"],
        tf.zeros([batch]),
    )
    _, _, _, total = tf.while_loop(lambda t, *_: t < steps, body, start)
    return total


def forced_function(model):
    """forced_log_probs of model traced once for any batch shape: (int32[B, S], int32[B, T]) -> float32[B]."""
    spec = [tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None], tf.int32)]
    return tf.function(lambda s, t: forced_log_probs(model, s, t), input_signature=spec, autograph=False)


def score_pairs(function, tokenizers, sources: Sequence[str], targets: Sequence[str], batching) -> list[PairScore]:
    """The score of every (source, target) pair, in input order: tokenized with tokenizers (`Tokenizers`),
    sources cut to batching.max_input_len, in batches of batching.batch_size pairs sorted by length, each
    scored by function (`forced_function`)."""
    if len(sources) != len(targets):
        raise UserError(f"{len(sources)} sources but {len(targets)} targets; expected one target per source")
    eos, pad = RESERVED.eos, RESERVED.pad
    source_ids = [ids[: batching.max_input_len] for ids in tokenizers.src.encode_batch(list(sources))]
    target_ids = [ids + [eos] for ids in tokenizers.tgt.encode_batch(list(targets))]
    scores: list[PairScore | None] = [None] * len(sources)
    encoded = []
    for i, (s, t) in enumerate(zip(source_ids, target_ids)):
        if s:
            encoded.append(i)
        else:  # translate.py's empty translation, score 0, is the only one
            scores[i] = PairScore(0.0 if len(t) == 1 else -math.inf, len(t))
    encoded.sort(key=lambda i: (len(source_ids[i]), len(target_ids[i])))
    size = batching.batch_size or 64
    for start in range(0, len(encoded), size):
        rows = encoded[start : start + size]
        total = function(_pad([source_ids[i] for i in rows], pad), _pad([target_ids[i] for i in rows], pad))
        for i, value in zip(rows, total.numpy().tolist()):
            scores[i] = PairScore(float(value), len(target_ids[i]))
    return scores


def _pad(rows: list[list[int]], pad: int) -> tf.Tensor:
    """Lists of ids -> int32[len(rows), longest], PAD on the right."""
    return tf.ragged.constant(rows, dtype=tf.int32).to_tensor(default_value=pad)

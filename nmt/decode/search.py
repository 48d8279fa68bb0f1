"""Batched beam search over the decoder protocol; greedy search is beam search with one beam.

The decoder protocol (implemented by the models):

- ``state = model.encode(source_ids)``: ``source_ids`` int32[B, S], 0-padded on the right. ``state`` is
  ``{"memory": {...}, "recurrent": {...}}``, every leaf batch-major [B, ...]. Memory leaves are per-sentence
  constants, recurrent leaves change at every step.
- ``log_probs, new_state, attention = decode_step(tokens, state)``: tokens int32[R] (the previous target
  token, BOS first), log_probs float32[R, V] normalized log-softmax, new_state of the same structure
  (memory passed through), attention float32[R, S] or None.
- With a shortlist (`nmt.decode.shortlist`): ``state["output"] = model.output_weights(vocabulary)`` for the
  batch's vocabulary int32[V'] (sorted target ids), and decode_step's log_probs are over those V' ids,
  normalized over them: [R, V']. The search maps its choices back to target ids; it is the full search of a
  model whose logits outside the vocabulary are -inf.

The search runs its whole loop in one ``tf.while_loop`` over preallocated buffers, so it works eagerly,
inside ``tf.function`` and inside ``tf.function(jit_compile=True)`` (XLA). Beam search tiles the state once to
[B*K, ...] (row ``b*K + k`` is beam k of sentence b) and afterwards reorders only the recurrent leaves at each
step. Once enough sentences of the batch are done, they leave the loop (compaction, `beam_search`): every
per-sentence and per-row tensor, memory included, is cut to the sentences still searching, so the decoder
steps run on fewer rows; ``compact=False`` keeps every shape fixed (the translation graph's XLA path).

The options of a search are one `SearchSettings` (`nmt.decode.settings`: beam size, n-best, length penalty,
output length, attention), validated where it is made, with errors that name the setting;
``search(model, ids, settings)`` runs it. `nmt.decode.graph` builds the translation of text around it.

Definitions:

- ``|y|``, the length of a hypothesis, counts the generated tokens including the final EOS and excluding BOS.
  A hypothesis that reaches the maximum length without EOS is finished there and has ``|y|`` = that maximum.
- Length penalty (GNMT, Wu et al. 2016): ``lp(|y|) = ((5 + |y|) / 6) ** length_penalty``; the score of a
  hypothesis is ``log P(y | x) / lp(|y|)``. ``length_penalty = 0`` scores by the raw log-probability.
- Maximum output length of sentence b: ``clip(floor(a * |x_b| + b_ + 1e-3), 1, L)`` where ``|x_b|`` is the
  number of non-pad source tokens and ``L`` the buffer length: ``max_length`` when given, else the same formula
  on the padded source width S. (The 1e-3 keeps float rounding from moving an integral value down.)
- PAD and BOS are never generated (their log-probabilities are masked to -inf).

Beam search (``beam_search``):

- Every step keeps the K best candidates over beam x vocabulary, ranked by length-penalized score. This is
  done in two top_k calls that give the same result as one top_k over [B, K*V] with no elementwise pass over
  [B, K, V]: the K+2 best raw log-probs of each beam row ([B*K, V] -> [B*K, K+2]; a beam cannot place more
  than K candidates, and PAD/BOS are masked on this small result), then the K best of [B, K*(K+3)].
  A finished beam stays in the beam frozen: its only candidate is itself (no token appended, score
  unchanged), so it competes for its slot with the extensions of the unfinished beams. At the first step only
  beam 0 of each sentence is live (the others start at -inf), so the K beams are distinct. With K = 1 this is
  exactly greedy search (the most probable allowed token at every step, ties: lowest id); a separate greedy
  loop measured no faster (docs/BENCHMARKS.md), so there is none.
- Every hypothesis that finishes also enters a per-sentence archive of the N best finished hypotheses; the
  result is that archive (so a finished hypothesis later pushed out of the beam is not lost).
- Early stop per sentence: log-probabilities only decrease as tokens are appended and ``lp`` grows with the
  length, so an unfinished beam with log-probability ``s <= 0`` can at best finish with
  ``s / lp(max_len_b)``. A sentence is done once its N-th best finished score is >= that bound for its best
  unfinished beam (or no unfinished beam is left, or the maximum length is reached); the loop ends when all
  sentences are done. A done sentence is frozen while the others continue, so a sentence decodes identically
  alone and inside a batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

from nmt.decode.settings import SearchSettings
from nmt.errors import UserError


class Reserved(NamedTuple):
    """The reserved target ids a search needs (`nmt.text.tokenizer` owns the constants)."""

    pad: int = 0
    bos: int = 2
    eos: int = 3


RESERVED = Reserved()

NEG_INF = float("-inf")
_LENGTH_EPSILON = 1e-3

State = Any  # {"memory": {...}, "recurrent": {...}} of tensors
DecodeStep = Callable[[tf.Tensor, State], tuple[tf.Tensor, State, tf.Tensor | None]]


class SearchResult(NamedTuple):
    """N-best lists of a batch, best first.

    tokens: int32[B, N, L] generated tokens without BOS, EOS included (when produced), then PAD.
    lengths: int32[B, N] |y| (EOS included).
    scores: float32[B, N] length-penalized scores log P / lp(|y|), descending along N.
    log_probs: float32[B, N] raw log P(y | x) (sum of the step log-probabilities).
    attention: float32[B, N, L, S] attention of each generated token (zero beyond |y|), or None.
    An n-best slot that no hypothesis filled (possible only with tiny vocabularies) has score and log_prob
    -inf, length 0 and PAD tokens.
    """

    tokens: tf.Tensor
    lengths: tf.Tensor
    scores: tf.Tensor
    log_probs: tf.Tensor
    attention: tf.Tensor | None = None


# ----------------------------------------------------------------------------------------------- small pieces


def lp(lengths, length_penalty: float) -> tf.Tensor:
    """The GNMT length normalizer lp(|y|) = ((5 + |y|) / 6) ** length_penalty, float32 of the shape of lengths."""
    lengths = tf.cast(lengths, tf.float32)
    return tf.pow((5.0 + lengths) / 6.0, tf.constant(length_penalty, tf.float32))


def _length_limit_py(width: int, a: float, b: float) -> int:
    value = np.float32(a) * np.float32(width) + np.float32(b) + np.float32(_LENGTH_EPSILON)
    return max(1, int(math.floor(float(value))))


def buffer_length(width, max_len_a: float, max_len_b: float) -> tf.Tensor:
    """The output buffer length of sources width int32[] tokens wide: max(1, floor(a * width + b + 1e-3)),
    int32[] (the same float32 arithmetic as the per-sentence limits of `output_length_limits`)."""
    width = tf.cast(width, tf.float32)
    return tf.maximum(1, tf.cast(tf.floor(max_len_a * width + max_len_b + _LENGTH_EPSILON), tf.int32))


def output_length_limits(
    source_ids: tf.Tensor, max_len_a: float, max_len_b: float, max_length: int | None = None, pad_id: int = 0
):
    """Per-sentence maximum output lengths and the buffer length.

    source_ids: int32[B, S]; max_len_a, max_len_b >= 0 (checked by `SearchSettings`). Returns (limits int32[B],
    L) where L is a Python int when the source width is static or ``max_length`` is given (XLA then sees
    static buffer shapes), else an int32 scalar tensor.
    """
    if max_length is not None and (
        isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)) or max_length < 1
    ):
        raise UserError(f"max_length: expected an integer >= 1 (or none), got {max_length!r}")
    source_lengths = tf.reduce_sum(tf.cast(tf.not_equal(source_ids, pad_id), tf.int32), axis=1)  # [B]
    if max_length is not None:
        length = int(max_length)
    elif source_ids.shape[1] is not None:
        length = _length_limit_py(source_ids.shape[1], max_len_a, max_len_b)
    else:
        length = buffer_length(tf.shape(source_ids)[1], max_len_a, max_len_b)
    limits = tf.floor(max_len_a * tf.cast(source_lengths, tf.float32) + max_len_b + _LENGTH_EPSILON)
    limits = tf.clip_by_value(tf.cast(limits, tf.int32), 1, length)  # [B]
    return limits, length


def tile_beams(state: State, beam_size: int) -> State:
    """Repeats every memory and recurrent leaf K times along axis 0: [B, ...] -> [B*K, ...], row b*K + k =
    beam k of sentence b (state["output"], the same for every row, is kept as it is)."""
    tiled = {key: value for key, value in state.items() if key not in ("memory", "recurrent")}
    for key in ("memory", "recurrent"):
        tiled[key] = tf.nest.map_structure(lambda x: tf.repeat(x, beam_size, axis=0), state[key])
    return tiled


def reorder_recurrent(recurrent, flat_indices: tf.Tensor):
    """Gathers every recurrent leaf [B*K, ...] along axis 0 by flat_indices int32[B*K]."""
    return tf.nest.map_structure(lambda x: tf.gather(x, flat_indices, axis=0), recurrent)


def _best_allowed(log_probs: tf.Tensor, k: int, pad_id: int, bos_id: int, vocabulary=None):
    """Candidates for the k best tokens of every row other than PAD and BOS.

    log_probs float32[R, V] -> (values float32[R, C], ids int32[R, C]) with C = min(k + 2, V): the C best
    tokens (ties: lower id first) with PAD/BOS set to -inf, so at least k allowed ones remain. One top_k over
    the raw rows, and the masking happens on the small result: no elementwise pass over [R, V].
    vocabulary: int32[V] ascending, the target id of each column (a shortlist); None: column = id.
    """
    if vocabulary is not None:  # a shortlist narrower than k + 2 is padded with PAD columns at -inf
        short = tf.maximum(k + 2 - tf.shape(log_probs)[-1], 0)
        log_probs = tf.pad(log_probs, [[0, 0], [0, short]], constant_values=NEG_INF)
        vocabulary = tf.pad(vocabulary, [[0, short]], constant_values=pad_id)
    vocab = log_probs.shape[-1]
    width = k + 2 if vocab is None else min(k + 2, vocab)
    values, ids = tf.math.top_k(log_probs, k=width)  # [R, C]
    ids = tf.cast(ids, tf.int32)
    if vocabulary is not None:
        ids = tf.gather(vocabulary, ids)
    forbidden = tf.logical_or(tf.equal(ids, pad_id), tf.equal(ids, bos_id))
    return tf.where(forbidden, NEG_INF, values), ids


def _write_step(buffer: tf.Tensor, t, values: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Returns buffer with buffer[r, t] = values[r] where mask[r].

    buffer [R1, R2, L, *D], values [R1, R2, *D], mask bool[R1, R2]. Fixed shapes (no scatter), XLA-friendly.
    """
    length = tf.shape(buffer)[2]
    hit = tf.logical_and(tf.equal(tf.range(length), t)[None, None, :], mask[:, :, None])  # [R1, R2, L]
    extra = len(buffer.shape) - 3
    hit = tf.reshape(hit, tf.concat([tf.shape(hit), tf.ones([extra], tf.int32)], 0))  # [R1, R2, L, 1...]
    return tf.where(hit, tf.expand_dims(values, 2), buffer)


def _keep_shapes(new, old, relax: bool = False):
    """Pins the static shapes of loop variables (the while loop needs them unchanged); relax: all but the
    leading dimension (compaction changes that one)."""
    shape = _relaxed if relax else (lambda x: x)
    return tf.nest.map_structure(lambda n, o: tf.ensure_shape(n, shape(o.shape)), new, old)


def _step(decode_step: DecodeStep, tokens, memory, recurrent, return_attention: bool, output=None):
    """One decoder call; returns (log_probs float32[R, V], new recurrent, attention float32[R, S] or None)."""
    state = {"memory": memory, "recurrent": recurrent}
    if output is not None:
        state["output"] = output
    log_probs, new_state, attention = decode_step(tokens, state)
    if return_attention and attention is None:
        raise UserError("attention weights were requested but this model's decode_step returns no attention")
    attention = tf.cast(attention, tf.float32) if return_attention else None
    return tf.cast(log_probs, tf.float32), new_state["recurrent"], attention


# -------------------------------------------------------------------------------------------------- beam search


def _candidate_scores(top_log_probs, beam_log_probs, beam_lengths, finished, done, t, length_penalty):
    """Length-penalized score of every candidate of every beam.

    top_log_probs float32[B, K, C]: each beam's C best allowed next-token log-probs (-inf: none);
    beam_log_probs float32[B, K] raw sums (-inf: dead beam); beam_lengths int32[B, K]; finished bool[B, K];
    done bool[B]; t the step (0-based).
    Returns float32[B, K, C + 1]: columns < C are the extensions of an unfinished beam, scored
    (log P + step) / lp(t + 1), -inf for a finished beam; column C is a finished beam itself, frozen (no token
    appended, its unchanged score), -inf for an unfinished beam. Every candidate of a done sentence is -inf.
    """
    extend = (beam_log_probs[:, :, None] + top_log_probs) / lp(t + 1, length_penalty)  # [B, K, C]
    extend = tf.where(finished[:, :, None], NEG_INF, extend)
    frozen = tf.where(finished, beam_log_probs / lp(beam_lengths, length_penalty), NEG_INF)  # [B, K]
    scores = tf.concat([extend, frozen[:, :, None]], axis=2)  # [B, K, C+1]
    return tf.where(done[:, None, None], NEG_INF, scores)


def _merge_finished(archive, candidates, n_best: int):
    """Keeps the N best of archive ∪ candidates by score (ties: archive first, then lower index).

    archive and candidates: dicts of scores float32[B, M], log_probs float32[B, M], lengths int32[B, M],
    tokens int32[B, M, L] and optionally attention float32[B, M, L, S] (M = N for the archive, K for the
    candidates; a candidate that did not finish has score -inf). Returns the new archive (M = N).
    """
    joined = {key: tf.concat([archive[key], candidates[key]], axis=1) for key in archive}  # [B, N+K, ...]
    _, pick = tf.math.top_k(joined["scores"], k=n_best)  # [B, N]
    return {key: tf.gather(value, pick, axis=1, batch_dims=1) for key, value in joined.items()}


def beam_search(
    decode_step: DecodeStep,
    state: State,
    source_ids: tf.Tensor,
    settings: SearchSettings,
    *,
    max_length: int | None = None,
    reserved: Reserved = RESERVED,
    vocabulary: tf.Tensor | None = None,
    compact: bool = True,
) -> SearchResult:
    """Batched beam search with K = settings.beam_size beams per sentence; returns the N = settings.nbest
    best hypotheses.

    state: ``model.encode(source_ids)`` (leaves [B, ...], not tiled; with a shortlist, ``state["output"]``
    of the vocabulary); source_ids int32[B, S]; max_length: the output buffer length (default: from the
    source width, `output_length_limits`); vocabulary: the shortlist's target ids int32[V'], ascending, that
    decode_step's columns stand for (None: the whole vocabulary). compact: drop the sentences that are done
    from the loop's tensors (see below); False keeps every shape fixed, as XLA needs.
    See the module docstring for the scoring, freezing and stopping rules.

    Compaction: a done sentence is frozen, so its rows need no more decoder steps. Whenever at least
    COMPACT_SHARE of the sentences still in the loop are done, their n-best lists go to the result and every
    per-sentence and per-row tensor (memory included) is cut to the others: B' <= B sentences, B'*K rows.
    """
    K, N, penalty = settings.beam_size, settings.nbest, settings.length_penalty
    return_attention, pad_id, bos_id, eos_id = settings.attention, reserved.pad, reserved.bos, reserved.eos
    limits, buffer_length = output_length_limits(source_ids, settings.max_len_a, settings.max_len_b, max_length, pad_id)
    batch = tf.shape(source_ids)[0]
    width = tf.shape(source_ids)[1]
    state = tile_beams(state, K)  # leaves [B*K, ...]
    output = state.get("output")
    first_beam = tf.concat([[0.0], tf.fill([K - 1], NEG_INF)], axis=0)  # [K]

    def empty(m):
        hyps = dict(
            scores=tf.fill([batch, m], NEG_INF),
            log_probs=tf.fill([batch, m], NEG_INF),
            lengths=tf.zeros([batch, m], tf.int32),
            tokens=tf.fill([batch, m, buffer_length], tf.constant(pad_id, tf.int32)),
        )
        if return_attention:
            hyps["attention"] = tf.zeros([batch, m, buffer_length, width])
        return hyps

    beams = empty(K)
    beams.pop("scores")
    beams["log_probs"] = tf.tile(first_beam[None, :], [batch, 1])  # [B, K]
    beams["finished"] = tf.zeros([batch, K], tf.bool)
    loop_vars = dict(
        t=tf.constant(0),
        # per sentence (B' of them; compaction cuts these)
        index=tf.range(batch),  # [B'] each sentence's row in the batch
        limits=limits,  # [B'] maximum output lengths
        done=tf.zeros([batch], tf.bool),
        beams=beams,
        archive=empty(N),
        # per row (B'*K)
        prev=tf.fill([batch * K], tf.constant(bos_id, tf.int32)),  # [B'*K]
        memory=state["memory"],
        recurrent=state["recurrent"],
    )
    results = empty(N)  # [B, ...]: the n-best lists of the sentences compaction dropped

    def cond(v, results):
        return tf.logical_and(v["t"] < buffer_length, tf.logical_not(tf.reduce_all(v["done"])))

    def body(v, results):
        t, beams = v["t"], v["beams"]
        batch = tf.shape(v["done"])[0]  # B'
        step_log_probs, recurrent, step_attention = _step(
            decode_step, v["prev"], v["memory"], v["recurrent"], return_attention, output
        )
        top_log_probs, top_tokens = _best_allowed(step_log_probs, K, pad_id, bos_id, vocabulary)  # [B'*K, C]
        C = top_log_probs.shape[1]
        top_log_probs = tf.reshape(top_log_probs, [batch, K, C])  # [B', K, C]
        candidates = _candidate_scores(
            top_log_probs, beams["log_probs"], beams["lengths"], beams["finished"], v["done"], t, penalty
        )  # [B', K, C+1]
        top_scores, top = tf.math.top_k(tf.reshape(candidates, [batch, K * (C + 1)]), k=K)  # [B', K]
        source_beam = top // (C + 1)  # [B', K]

        def from_source(x):
            return tf.gather(x, source_beam, axis=1, batch_dims=1)

        def from_candidates(x, frozen_value):
            x = tf.concat([tf.reshape(x, [batch, K, C]), tf.fill([batch, K, 1], frozen_value)], axis=2)  # [B', K, C+1]
            return tf.gather(tf.reshape(x, [batch, K * (C + 1)]), top, batch_dims=1)  # [B', K]

        was_finished = from_source(beams["finished"])  # [B', K]
        live = top_scores > NEG_INF
        extended = tf.logical_and(live, tf.logical_not(was_finished))
        token = from_candidates(top_tokens, tf.constant(pad_id, tf.int32))  # [B', K]; PAD for frozen beams
        token_log_probs = from_candidates(top_log_probs, 0.0)  # [B', K]
        log_probs = tf.where(live, from_source(beams["log_probs"]) + token_log_probs, NEG_INF)
        ends = tf.logical_or(tf.equal(token, eos_id), (t + 1 >= v["limits"])[:, None])
        newly_finished = tf.logical_and(extended, ends)
        new_beams = dict(
            log_probs=log_probs,
            lengths=tf.where(extended, t + 1, from_source(beams["lengths"])),
            tokens=_write_step(from_source(beams["tokens"]), t, token, extended),
            finished=tf.logical_or(was_finished, newly_finished),
        )
        if return_attention:
            step_attention = tf.reshape(step_attention, [batch, K, width])  # [B', K, S]
            new_attention = from_source(beams["attention"])
            new_beams["attention"] = _write_step(new_attention, t, from_source(step_attention), extended)

        finishing = dict(new_beams, scores=tf.where(newly_finished, top_scores, NEG_INF))
        finishing.pop("finished")
        archive = _merge_finished(v["archive"], finishing, N)

        unfinished = tf.logical_and(live, tf.logical_not(new_beams["finished"]))
        best_unfinished = tf.reduce_max(tf.where(unfinished, log_probs, NEG_INF), axis=1)  # [B']
        cannot_improve = archive["scores"][:, N - 1] >= best_unfinished / lp(v["limits"], penalty)
        done = v["done"] | cannot_improve | (t + 1 >= v["limits"])

        rows = tf.reshape(tf.range(batch)[:, None] * K + source_beam, [batch * K])  # [B'*K]
        new = dict(
            v,
            t=t + 1,
            done=done,
            beams=new_beams,
            archive=archive,
            prev=tf.reshape(token, [batch * K]),  # [B'*K]; PAD for frozen beams
            recurrent=reorder_recurrent(recurrent, rows),
        )
        if compact:
            finished_sentences = tf.reduce_sum(tf.cast(done, tf.int32))
            worth = tf.logical_and(
                finished_sentences > 0,
                tf.cast(finished_sentences, tf.float32) >= COMPACT_SHARE * tf.cast(batch, tf.float32),
            )
            new, results = tf.cond(worth, lambda: _compact(new, results, K), lambda: (new, results))
        return _keep_shapes(new, v, relax=compact), results

    shape_invariants = None
    if compact:
        shape_invariants = (
            tf.nest.map_structure(lambda x: _relaxed(x.shape), loop_vars),
            tf.nest.map_structure(lambda x: x.shape, results),
        )
        shape_invariants[0]["t"] = tf.TensorShape([])
    v, results = tf.while_loop(cond, body, (loop_vars, results), shape_invariants=shape_invariants)
    archive = _scatter_archive(results, v["index"], v["archive"])
    filled = archive["scores"] > NEG_INF  # [B, N]
    return SearchResult(
        tokens=tf.where(filled[:, :, None], archive["tokens"], pad_id),
        lengths=tf.where(filled, archive["lengths"], 0),
        scores=archive["scores"],
        log_probs=archive["log_probs"],
        attention=archive.get("attention"),
    )


#: Compaction happens once at least this share of the sentences in the loop are done (`beam_search`).
COMPACT_SHARE = 0.25


def _relaxed(shape: tf.TensorShape) -> tf.TensorShape:
    """shape with its leading (batch or row) dimension unknown; a scalar stays a scalar."""
    return shape if shape.rank == 0 else tf.TensorShape([None]).concatenate(shape[1:])


def _scatter_archive(results, index, archive):
    """results (the batch's n-best lists, [B, ...]) with rows index int32[B'] replaced by archive ([B', ...])."""
    return {key: tf.tensor_scatter_nd_update(results[key], index[:, None], archive[key]) for key in results}


def _compact(v, results, K: int):
    """The loop's tensors without the sentences that are done (their n-best lists written to results)."""
    results = _scatter_archive(results, v["index"], v["archive"])
    keep = tf.cast(tf.where(tf.logical_not(v["done"]))[:, 0], tf.int32)  # [B'']
    keep_rows = tf.reshape(keep[:, None] * K + tf.range(K)[None, :], [-1])  # [B''*K]

    def sentences(x):
        return tf.nest.map_structure(lambda leaf: tf.gather(leaf, keep, axis=0), x)

    def rows(x):
        return tf.nest.map_structure(lambda leaf: tf.gather(leaf, keep_rows, axis=0), x)

    kept = dict(v, prev=rows(v["prev"]), memory=rows(v["memory"]), recurrent=rows(v["recurrent"]))
    for key in ("index", "limits", "done", "beams", "archive"):
        kept[key] = sentences(v[key])
    return kept, results


# ------------------------------------------------------------------------------------------------- entry point


def search(
    model,
    source_ids: tf.Tensor,
    settings: SearchSettings,
    *,
    max_length: int | None = None,
    reserved: Reserved = RESERVED,
    vocabulary=None,
    compact: bool = True,
) -> SearchResult:
    """Encodes source_ids int32[B, S] with ``model.encode`` and runs `beam_search` over ``model.decode_step``
    (beam size 1: greedy search); vocabulary: a shortlist int32[V'] of target ids, ascending, holding the
    reserved ids (`nmt.decode.shortlist.batch_vocabulary`), or None for the whole vocabulary; compact: see
    `beam_search` (False under XLA). Wrap in ``tf.function`` (optionally ``jit_compile=True``) for speed."""
    if not isinstance(settings, SearchSettings):
        raise TypeError(f"settings: expected a SearchSettings, got {type(settings).__name__}")
    source_ids = tf.convert_to_tensor(source_ids, tf.int32)
    state = model.encode(source_ids)
    if vocabulary is not None:
        vocabulary = tf.convert_to_tensor(vocabulary, tf.int32)
        state = dict(state, output=model.output_weights(vocabulary))
    return beam_search(
        model.decode_step,
        state,
        source_ids,
        settings,
        max_length=max_length,
        reserved=reserved,
        vocabulary=vocabulary,
        compact=compact,
    )

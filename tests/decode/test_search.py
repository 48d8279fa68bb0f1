"""Oracle tests of nmt.decode.search on tiny fake decoders (vocabulary 6, short outputs).

The fake model follows the decoder protocol: a GRU-less toy recurrence h_t = tanh(W h_{t-1} + E[y_{t-1}]), dot
attention over the (0-padded) source embeddings, log_softmax(T[y_{t-1}] + U (h_t + context)). Its scores depend
on the whole history and on the per-sentence memory. A NumPy float64 twin recomputes log-probabilities
independently, and exhaustive enumeration gives the exact optimum.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import tensorflow as tf

from nmt.decode import search
from nmt.errors import UserError

PAD, UNK, BOS, EOS = 0, 1, 2, 3
V, H = 6, 3
EMITTABLE = [t for t in range(V) if t not in (PAD, BOS)]  # UNK, EOS, 4, 5


class FakeModel:
    def __init__(
        self, seed: int, eos_bias: float = -5.0, eos_slope: float = 2.0, attention: bool = True, scale: float = 0.6
    ):
        rng = np.random.default_rng(seed)
        self.E = rng.normal(size=(V, H))
        self.T = scale * rng.normal(size=(V, V))
        self.eos_bias, self.eos_slope = eos_bias, eos_slope  # EOS logit += eos_bias + eos_slope * step
        self.U = scale * rng.normal(size=(H, V))
        self.W = 0.8 * rng.normal(size=(H, H))
        self.attention = attention
        self.calls = 0
        self._E, self._T, self._U, self._W = (tf.constant(x, tf.float32) for x in (self.E, self.T, self.U, self.W))

    # --- the protocol (TensorFlow)
    def encode(self, source_ids):
        mask = tf.cast(tf.not_equal(source_ids, PAD), tf.float32)  # [B, S]
        keys = tf.gather(self._E, source_ids) * mask[:, :, None]  # [B, S, H]
        count = tf.maximum(tf.reduce_sum(mask, 1, keepdims=True), 1.0)
        h = tf.tanh(tf.reduce_sum(keys, 1) / count)  # [B, H]
        return {"memory": {"keys": keys, "mask": mask}, "recurrent": {"h": h, "step": tf.zeros_like(count[:, 0])}}

    def decode_step(self, tokens, state):
        self.calls += 1
        keys, mask = state["memory"]["keys"], state["memory"]["mask"]
        h = tf.tanh(tf.matmul(state["recurrent"]["h"], self._W) + tf.gather(self._E, tokens))  # [R, H]
        energy = tf.reduce_sum(keys * h[:, None, :], -1) + (mask - 1.0) * 1e9  # [R, S]
        weights = tf.nn.softmax(energy, -1)
        context = tf.reduce_sum(weights[:, :, None] * keys, 1)  # [R, H]
        step = state["recurrent"]["step"] + 1.0  # [R]
        eos = (self.eos_bias + self.eos_slope * step)[:, None] * tf.one_hot(EOS, V)  # [R, V]
        logits = tf.gather(self._T, tokens) + tf.matmul(h + context, self._U) + eos  # [R, V]
        new_state = {"memory": state["memory"], "recurrent": {"h": h, "step": step}}
        return tf.nn.log_softmax(logits), new_state, (weights if self.attention else None)

    # --- independent NumPy float64 twin: teacher-forced log-probs and attention of a target sequence
    def forced(self, source: list[int], target: list[int]):
        keys = self.E[np.array(source)]  # [S, H] (no padding)
        h = np.tanh(keys.sum(0) / len(source))
        log_probs, attentions, prev = [], [], BOS
        for step, token in enumerate(target, start=1):
            h = np.tanh(h @ self.W + self.E[prev])
            energy = keys @ h
            weights = np.exp(energy - energy.max())
            weights /= weights.sum()
            logits = self.T[prev] + (h + weights @ keys) @ self.U
            logits[EOS] += self.eos_bias + self.eos_slope * step
            logits = logits - logits.max()
            log_probs.append(logits[token] - np.log(np.exp(logits).sum()))
            attentions.append(weights)
            prev = token
        return np.array(log_probs), np.array(attentions)


def penalty(length: int, alpha: float) -> float:
    return ((5.0 + length) / 6.0) ** alpha


def exhaustive(model: FakeModel, source: list[int], max_len: int, alpha: float):
    """Every hypothesis (ends with EOS, or reaches max_len), as (score, log_prob, tokens), best first."""
    hyps = []
    content = [t for t in EMITTABLE if t != EOS]
    for length in range(1, max_len + 1):
        for prefix in itertools.product(content, repeat=length - 1):
            ends = [EOS] + (content if length == max_len else [])
            for last in ends:
                tokens = list(prefix) + [last]
                log_prob = model.forced(source, tokens)[0].sum()
                hyps.append((log_prob / penalty(length, alpha), log_prob, tokens))
    hyps.sort(key=lambda h: -h[0])
    return hyps


def make_batch(seed: int, size: int, min_len: int = 1, max_len: int = 7):
    rng = np.random.default_rng(seed)
    sources = [list(rng.integers(1, V, size=rng.integers(min_len, max_len + 1))) for _ in range(size)]
    width = max(len(s) for s in sources)
    ids = np.zeros((size, width), np.int32)
    for i, s in enumerate(sources):
        ids[i, : len(s)] = s
    return sources, ids


def hypotheses(result, b: int):
    """[(tokens list up to length, score, log_prob)] of sentence b."""
    out = []
    for n in range(result.tokens.shape[1]):
        length = int(result.lengths[b, n])
        out.append(
            (list(np.asarray(result.tokens[b, n, :length])), float(result.scores[b, n]), float(result.log_probs[b, n]))
        )
    return out


def settings_and_rest(beam_size=1, nbest=1, length_penalty=0.6, max_len_a=2.0, max_len_b=10, attention=False, **rest):
    """The SearchSettings of a test's options (these tests' own defaults) and the other keywords."""
    return search.SearchSettings(beam_size, nbest, length_penalty, max_len_a, max_len_b, attention), rest


def run_search(model, ids, **kw):
    settings, rest = settings_and_rest(**kw)
    return search.search(model, ids, settings, **rest)


def greedy(model, ids, **kw):
    """Greedy search as the toolkit runs it: search() with one beam and one hypothesis."""
    return run_search(model, ids, beam_size=1, nbest=1, **kw)


def beam(model, ids, **kw):
    settings, rest = settings_and_rest(**kw)
    return search.beam_search(model.decode_step, model.encode(ids), ids, settings, **rest)


# ------------------------------------------------------------------------------------------------------ oracles


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.0])
def test_wide_beam_equals_exhaustive_search_and_n_best(seed, alpha):
    model = FakeModel(seed)
    sources = [[4, 5], [1, 4, 4], [5, 1, 4, 4]]  # limits |x| (a=1, b=0): 2, 3, 4
    ids = np.array([s + [0] * (4 - len(s)) for s in sources], np.int32)
    space = sum(3 ** (n - 1) for n in range(1, 5)) + 3**4  # 121 hypotheses of length <= 4
    result = beam(model, ids, beam_size=space, nbest=5, length_penalty=alpha, max_len_a=1.0, max_len_b=0)
    for b, source in enumerate(sources):
        expected = exhaustive(model, source, len(source), alpha)[:5]
        got = hypotheses(result, b)
        assert [h[0] for h in got] == [e[2] for e in expected]
        np.testing.assert_allclose([h[1] for h in got], [e[0] for e in expected], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose([h[2] for h in got], [e[1] for e in expected], rtol=1e-5, atol=1e-5)


def reference_beam(model: FakeModel, source: list[int], K: int, N: int, alpha: float, limit: int):
    """Textbook beam search in plain Python on the float64 twin, with no early stop: at every step the
    K best of (every extension of every unfinished beam, every finished beam as it is), by
    length-penalized score; a hypothesis that ends (EOS, or the length limit) joins the finished list
    while it is in the beam. -> the N best finished as (tokens, score, log_prob). K = 1 is greedy."""
    content = [t for t in range(V) if t not in (PAD, BOS)]
    beams = [(0.0, [], False)]  # (log_prob, tokens, finished); only one live beam at the start
    finished = []
    for t in range(limit):
        candidates = []
        for log_prob, tokens, done in beams:
            if done:
                candidates.append((log_prob / penalty(len(tokens), alpha), log_prob, tokens, True, False))
                continue
            for token in content:
                new = log_prob + model.forced(source, tokens + [token])[0][-1]
                ends = token == EOS or t + 1 >= limit
                candidates.append((new / penalty(t + 1, alpha), new, tokens + [token], ends, ends))
        candidates.sort(key=lambda c: -c[0])
        beams = []
        for score, log_prob, tokens, done, newly in candidates[:K]:
            beams.append((log_prob, tokens, done))
            if newly:
                finished.append((tokens, score, log_prob))
        if all(done for _, _, done in beams):
            break
    finished.sort(key=lambda h: -h[1])
    return finished[:N]


@pytest.mark.parametrize("K", [1, 2, 3])
@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_narrow_beam_equals_a_plain_reference_beam_search(K, alpha):
    """Beams narrower than the hypothesis space (pruning at every step), 12 sentences in one batch,
    against the reference above: the same n-best tokens and scores. The reference never stops
    early, so this also checks that the early stop is sound when the beam prunes. (Pruning matters
    here: with K = 1 to 3 the reference misses the exhaustive optimum in 19 of these 36 cases.)"""
    model = FakeModel(11, eos_bias=-2.0, eos_slope=0.7)
    sources, ids = make_batch(12, 12, min_len=2, max_len=6)
    result = beam(model, ids, beam_size=K, nbest=K, length_penalty=alpha, max_len_a=1.0, max_len_b=1)
    for b, source in enumerate(sources):
        expected = reference_beam(model, source, K, K, alpha, limit=len(source) + 1)
        got = [h for h in hypotheses(result, b) if h[1] > -np.inf]
        assert [h[0] for h in got] == [e[0] for e in expected], (b, source)
        np.testing.assert_allclose([h[1] for h in got], [e[1] for e in expected], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose([h[2] for h in got], [e[2] for e in expected], rtol=1e-5, atol=1e-5)
    if K == 1:
        g = greedy(model, ids, length_penalty=alpha, max_len_a=1.0, max_len_b=1)
        for b, source in enumerate(sources):
            assert hypotheses(g, b)[0][0] == reference_beam(model, source, 1, 1, alpha, len(source) + 1)[0][0]


@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.0])
def test_greedy_equals_a_plain_greedy_loop(alpha):
    """Greedy search (one beam) against the reference with K = 1, a plain Python greedy loop on the float64
    twin: the same tokens, lengths, scores and log-probabilities, and the attention of those tokens."""
    model = FakeModel(3)
    sources, ids = make_batch(4, 64)
    g = greedy(model, ids, length_penalty=alpha, max_len_a=1.0, max_len_b=2, attention=True)
    for b, source in enumerate(sources):
        ((tokens, score, log_prob),) = reference_beam(model, source, 1, 1, alpha, limit=len(source) + 2)
        ((got_tokens, got_score, got_log_prob),) = hypotheses(g, b)
        assert got_tokens == tokens, (b, source)
        np.testing.assert_allclose([got_score, got_log_prob], [score, log_prob], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(
            g.attention[b, 0, : len(tokens), : len(source)], model.forced(source, tokens)[1], atol=1e-5
        )
    assert len(set(map(int, np.asarray(g.lengths).ravel()))) > 2  # the batch really mixes lengths


@pytest.fixture(scope="module")
def batch_results():
    """A batch of 64 mixed-length sentences decoded together and one by one (one traced function each)."""
    model = FakeModel(5)
    sources, ids = make_batch(6, 64)
    options = dict(length_penalty=0.6, max_len_a=1.0, max_len_b=2, attention=True)
    signature = [tf.TensorSpec([None, None], tf.int32)]
    run_beam = tf.function(lambda x: beam(model, x, beam_size=4, nbest=3, **options), input_signature=signature)
    run_greedy = tf.function(lambda x: greedy(model, x, **options), input_signature=signature)
    together = {"beam": run_beam(ids), "greedy": run_greedy(ids)}
    alone = {
        "beam": [run_beam(np.array([s], np.int32)) for s in sources],
        "greedy": [run_greedy(np.array([s], np.int32)) for s in sources],
    }
    return model, sources, ids, together, alone


@pytest.mark.parametrize("kind", ["beam", "greedy"])
def test_sentence_alone_equals_inside_a_batch(batch_results, kind):
    _, sources, _, together, alone = batch_results
    batch = together[kind]
    for b, source in enumerate(sources):
        single = alone[kind][b]
        length = single.tokens.shape[2]
        np.testing.assert_array_equal(single.tokens[0], batch.tokens[b, :, :length])
        assert not np.any(batch.tokens[b, :, length:])
        np.testing.assert_array_equal(single.lengths[0], batch.lengths[b])
        np.testing.assert_allclose(single.scores[0], batch.scores[b], rtol=1e-6)
        np.testing.assert_allclose(single.log_probs[0], batch.log_probs[b], rtol=1e-6)
        np.testing.assert_allclose(single.attention[0], batch.attention[b, :, :length, : len(source)], atol=1e-6)


@pytest.mark.parametrize("kind", ["beam", "greedy"])
def test_scores_equal_recomputed_log_probs_and_outputs_are_well_formed(batch_results, kind):
    model, sources, ids, together, _ = batch_results
    result, alpha = together[kind], 0.6
    limits = [int(np.floor(len(s) + 2.0)) for s in sources]
    for b, source in enumerate(sources):
        got = hypotheses(result, b)
        scores = [h[1] for h in got]
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(h[0]) for h in got}) == len(got)  # n-best entries are distinct
        for n, (tokens, score, log_prob) in enumerate(got):
            # Finished hypotheses are frozen: nothing after EOS, EOS only last, or truncated at the limit.
            assert 1 <= len(tokens) <= limits[b]
            assert EOS not in tokens[:-1] and PAD not in tokens and BOS not in tokens
            assert tokens[-1] == EOS or len(tokens) == limits[b]
            assert not np.any(result.tokens[b, n, len(tokens) :])
            step_log_probs, attention = model.forced(source, tokens)
            np.testing.assert_allclose(log_prob, step_log_probs.sum(), rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(score, step_log_probs.sum() / penalty(len(tokens), alpha), rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(result.attention[b, n, : len(tokens), : len(source)], attention, atol=1e-5)
            assert not np.any(result.attention[b, n, len(tokens) :])
            assert not np.any(result.attention[b, n, :, len(source) :])


def test_eager_tf_function_and_xla_give_identical_results():
    model = FakeModel(7)
    _, ids = make_batch(8, 16)
    options = dict(length_penalty=0.6, max_len_a=1.0, max_len_b=2, attention=True)
    for decode in (lambda x: beam(model, x, beam_size=3, nbest=2, **options), lambda x: greedy(model, x, **options)):
        eager = decode(ids)
        for compiled in (tf.function(decode), tf.function(decode, jit_compile=True)):
            other = compiled(ids)
            np.testing.assert_array_equal(eager.tokens, other.tokens)
            np.testing.assert_array_equal(eager.lengths, other.lengths)
            np.testing.assert_allclose(eager.scores, other.scores, rtol=1e-6)
            np.testing.assert_allclose(eager.log_probs, other.log_probs, rtol=1e-6)
            np.testing.assert_allclose(eager.attention, other.attention, atol=1e-6)


def test_xla_with_unknown_shapes():
    """The exported translator feeds [None, None] sources: buffer sizes come from the runtime shape."""
    model = FakeModel(7)
    _, ids = make_batch(9, 5)
    run = tf.function(
        lambda x: run_search(model, x, beam_size=2, length_penalty=0.6, max_len_a=1.0, max_len_b=2),
        input_signature=[tf.TensorSpec([None, None], tf.int32)],
        jit_compile=True,
    )
    eager = run_search(model, ids, beam_size=2, length_penalty=0.6, max_len_a=1.0, max_len_b=2)
    np.testing.assert_array_equal(run(ids).tokens, eager.tokens)


# ------------------------------------------------------------------------------------------------- mechanisms


def test_finished_beam_is_frozen_in_candidates():
    top = tf.math.log(tf.fill([1, 2, 3], 0.25))  # [B=1, K=2, C=3] best allowed next-token log-probs
    raw = tf.constant([[-1.0, -2.0]])
    lengths = tf.constant([[2, 3]])
    finished = tf.constant([[True, False]])
    scores = search._candidate_scores(top, raw, lengths, finished, tf.constant([False]), 3, 0.6).numpy()
    assert scores.shape == (1, 2, 4)
    assert np.isneginf(scores[0, 0, :3]).all()  # a finished beam is not extended ...
    np.testing.assert_allclose(scores[0, 0, 3], -1.0 / penalty(2, 0.6), rtol=1e-6)  # ... and keeps its score
    np.testing.assert_allclose(scores[0, 1, :3], (-2.0 + np.log(0.25)) / penalty(4, 0.6), rtol=1e-6)
    assert np.isneginf(scores[0, 1, 3])
    done = search._candidate_scores(top, raw, lengths, finished, tf.constant([True]), 3, 0.6).numpy()
    assert np.isneginf(done).all()


def test_best_allowed_masks_pad_and_bos_and_keeps_k_candidates():
    log_probs = tf.math.log_softmax(tf.constant([[5.0, 1.0, 4.0, 3.0, 0.0, 2.0]]))
    values, ids = search._best_allowed(log_probs, 2, PAD, BOS)
    assert list(ids.numpy()[0]) == [0, 2, 3, 5]
    assert np.isneginf(values.numpy()[0, :2]).all() and np.isfinite(values.numpy()[0, 2:]).all()


def test_first_step_beams_are_distinct():
    """From one start token the K beams must branch into K different hypotheses (not K copies of the
    best). That a finished beam keeps its score and is never extended is checked on the candidate
    scores above, and whole searches against the plain-Python reference beam search."""
    model = FakeModel(11)
    _, ids = make_batch(12, 8)
    result = beam(model, ids, beam_size=4, nbest=4, length_penalty=0.0, max_len_a=1.0, max_len_b=2)
    for b in range(8):
        got = hypotheses(result, b)
        assert len({tuple(h[0]) for h in got}) == 4


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_search_stops_as_soon_as_nothing_can_beat_the_best_finished(alpha):
    model = FakeModel(13, eos_bias=12.0, eos_slope=0.0)  # EOS first is almost certain
    ids = np.array([[4, 5, 4, 5]], np.int32)
    for run in (
        lambda: greedy(model, ids, length_penalty=alpha),
        lambda: beam(model, ids, beam_size=3, length_penalty=alpha),
    ):
        model.calls = 0
        result = run()
        assert list(np.asarray(result.tokens[0, 0, :2])) == [EOS, PAD]
        assert model.calls == 1  # eager: one decoder call, although the limit is 2 * 4 + 10


def test_early_stop_bound_is_sound_with_length_penalty():
    """With alpha > 0 a longer hypothesis can win although a short one finished first: the bound must wait."""
    model = FakeModel(3)
    source = [4, 5, 1, 4]
    ids = np.array([source], np.int32)
    bests = set()
    for alpha in (0.0, 1.0, 5.0):
        expected = exhaustive(model, source, 4, alpha)[0]
        got = hypotheses(beam(model, ids, beam_size=121, length_penalty=alpha, max_len_a=1.0, max_len_b=0), 0)[0]
        assert got[0] == expected[2]
        bests.add(tuple(got[0]))
    assert len(bests) == 3  # [EOS], then longer winners as alpha grows


def test_maximum_output_length_is_a_times_source_length_plus_b():
    model = FakeModel(14, eos_bias=-1e9, eos_slope=0.0)  # never EOS: every hypothesis runs to its limit
    sources, ids = make_batch(15, 6)
    for run in (greedy, lambda m, x, **kw: beam(m, x, beam_size=2, nbest=2, **kw)):
        result = run(model, ids, length_penalty=0.6, max_len_a=1.5, max_len_b=1)
        expected = [int(np.floor(1.5 * len(s) + 1.0)) for s in sources]
        assert result.tokens.shape[2] == int(np.floor(1.5 * ids.shape[1] + 1.0))
        for b in range(len(sources)):
            assert set(map(int, np.asarray(result.lengths[b]))) == {expected[b]}
    limits, length = search.output_length_limits(tf.constant([[4, 4, 0], [4, 0, 0]]), 1.2, 0.0, max_length=3)
    assert list(limits.numpy()) == [2, 1] and length == 3


def test_length_penalty_formula():
    np.testing.assert_allclose(search.lp([1, 5, 10], 0.6), [((5 + n) / 6) ** 0.6 for n in (1, 5, 10)], rtol=1e-6)
    np.testing.assert_allclose(search.lp([7], 0.0), [1.0])


def test_search_entry_point_dispatches_and_tiles():
    model = FakeModel(16)
    _, ids = make_batch(17, 4)
    np.testing.assert_array_equal(run_search(model, ids, beam_size=1).tokens, beam(model, ids, beam_size=1).tokens)
    np.testing.assert_array_equal(
        run_search(model, ids, beam_size=3, nbest=2).tokens, beam(model, ids, beam_size=3, nbest=2).tokens
    )
    state = search.tile_beams({"memory": {"m": tf.constant([[1], [2]])}, "recurrent": {}}, 3)
    assert list(state["memory"]["m"].numpy().ravel()) == [1, 1, 1, 2, 2, 2]


@pytest.mark.parametrize(
    "options, fragment",
    [
        (dict(beam_size=0), "^decode.beam_size: received 0, expected a positive integer$"),
        (dict(beam_size=2, nbest=3), r"^decode.nbest: received 3, expected at most the beam size \(2\)$"),
        (dict(beam_size=2, length_penalty=-0.1), "^decode.length_penalty: received -0.1, expected a number >= 0$"),
        (dict(beam_size=2, attention=True), "attention"),
        (dict(beam_size=1, max_length=0), "max_length"),
        (dict(beam_size=3, max_len_a=-1.0), "max_len_a"),
    ],
)
def test_user_errors(options, fragment):
    model = FakeModel(0, attention=False)
    with pytest.raises(UserError, match=fragment):
        run_search(model, np.array([[4, 5]], np.int32), **options)


def test_search_settings_are_validated_once_with_their_names():
    """SearchSettings: the one carrier of a search's options; every instance is valid, errors name the
    setting (and a command line renames it); from_decode merges a decode section with the options given."""
    from nmt.config import DecodeConfig
    from nmt.config.fields import FieldError

    for kwargs, message in (
        (dict(beam_size=0), "decode.beam_size: received 0, expected a positive integer"),
        (dict(beam_size=2.0), "decode.beam_size: received 2.0, expected a positive integer"),
        (dict(beam_size=True), "decode.beam_size: received True, expected a positive integer"),
        (dict(nbest=0), "decode.nbest: received 0, expected a positive integer"),
        (dict(beam_size=2, nbest=3), "decode.nbest: received 3, expected at most the beam size (2)"),
        (dict(length_penalty=float("inf")), "decode.length_penalty: received inf, expected a finite number >= 0"),
        (dict(length_penalty="0.6"), "decode.length_penalty: received '0.6', expected a number >= 0"),
        (dict(max_len_a=-1), "decode.max_len_a: received -1.0, expected a number >= 0"),
        (dict(max_len_b=float("nan")), "decode.max_len_b: received nan, expected a finite integer >= 0"),
        (dict(max_len_a=0, max_len_b=0), "decode.max_len_a: received 0.0, expected max_len_a·|x| + max_len_b > 0"),
        (dict(attention="yes"), "decode.attention: received 'yes', expected true or false"),
    ):
        with pytest.raises(FieldError) as error:
            search.SearchSettings(**kwargs)
        assert str(error.value) == message
        name = message.split(":")[0].removeprefix("decode.")
        assert str(error.value.renamed({name: "--option"})) == message.replace(f"decode.{name}:", "--option:")
    # Declared once: the carrier's defaults and bounds are the decode section's.
    assert search.SearchSettings() == search.SearchSettings.from_decode(DecodeConfig())
    for field in ("beam_size", "nbest", "length_penalty", "max_len_a", "max_len_b"):
        declared = DecodeConfig.__dataclass_fields__[field]
        carried = search.SearchSettings.__dataclass_fields__[field]
        assert (carried.default, carried.metadata) == (declared.default, declared.metadata)
    decode = DecodeConfig(beam_size=4, nbest=3, length_penalty=1.0, max_len_a=2.0, max_len_b=5)
    assert search.SearchSettings.from_decode(decode) == search.SearchSettings(4, 3, 1.0, 2.0, 5)
    assert search.SearchSettings.from_decode(decode, beam_size=2).nbest == 2  # at most the beam size
    assert search.SearchSettings.from_decode(decode, beam_size=2, nbest=1, length_penalty=0) == (
        search.SearchSettings(2, 1, 0.0, 2.0, 5)
    )
    with pytest.raises(FieldError, match="^decode.nbest"):
        search.SearchSettings.from_decode(decode, beam_size=2, nbest=3)
    model = FakeModel(18)
    _, ids = make_batch(19, 3)
    settings = search.SearchSettings(beam_size=3, nbest=2, length_penalty=0.6, max_len_a=1.0, max_len_b=2)
    np.testing.assert_array_equal(
        search.search(model, ids, settings).tokens,
        beam(model, ids, beam_size=3, nbest=2, length_penalty=0.6, max_len_a=1.0, max_len_b=2).tokens,
    )

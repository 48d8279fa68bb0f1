"""nmt.model.seq2seq's wiring against a float64 NumPy oracle written from the equations.

tests/model/test_seq2seq.py checks the models against themselves (teacher forcing = step-by-step decoding,
padding invariance, parameter counts); a model wired wrongly but consistently passes all of those.
Here every weight and bias is set to a seeded random non-zero value, read back out of the Keras
layers by name, and fed to a plain NumPy implementation of the equations of
docs/DESIGN.md and the papers, one sentence at a time over its real tokens only (no
padding, no masks, no batching, no fused matmuls). The oracle is written from the equations, not
from nmt's code; only the weights' storage layout is taken from the modules' documentation:

- keras.layers.Dense and our GRU store kernels as [in, out] and compute x·K (+ b);
- nmt/model/gru.py: kernel [in, 3H], recurrent_kernel [H, 3H], context_kernel [C, 3H], bias [3H],
  gate blocks in the order [z, r, h];
- Keras' Bidirectional concatenates [forward, backward] and returns (outputs, →h, ←h);
- nmt/model/decoder.py: maxout pairs unit i with unit i + D/2 (documented there as a permutation of the
  paper's (2i−1, 2i) pairs; see `_maxout`).

The equations (σ logistic sigmoid, ⊙ element-wise, x·W with W stored [in, out]):

    GRU (docs/DESIGN.md; x_t the step input, c an optional per-step context that enters every gate
    like an input, i.e. the reset gate multiplies only h_{t-1}):
        z = σ(x·W_z + h·U_z + c·C_z + b_z),  r = σ(x·W_r + h·U_r + c·C_r + b_r)
        h̃ = tanh(x·W_h + (r ⊙ h)·U_h + c·C_h + b_h),  h_new = (1 − z) ⊙ h + z ⊙ h̃

    cho2014 (Cho et al. 2014, appendix A): h_N = last encoder state; c = tanh(h_N·V);
        h'_0 = tanh(c·V'); h'_t = GRU(e(y_{t-1}), h'_{t-1}, context c);
        s_t = h'_t·O_h + b + e(y_{t-1})·O_y + c·O_c

    attention (Bahdanau et al. 2015, appendix A): h_j = [→h_j; ←h_j] (or →h_j + ←h_j with
        encoder_merge sum); s_0 = tanh(←h_1·W_s) (or ←h_1, or 0: decoder_init);
        e_ij = v_aᵀ tanh(s_{i-1}·W_a + h_j·U_a); α_i = softmax_j(e_i); c_i = Σ_j α_ij h_j;
        s_i = GRU(e(y_{i-1}), s_{i-1}, context c_i);
        t_i = s_i·O_h + b + e(y_{i-1})·O_y + c_i·O_c   (the new state s_i, as section 3.1's
                                                         g(y_{i-1}, s_i, c_i) and Cho et al.)

    deep output: maxout u = max over pairs of t (or tanh(t)); logits = u·W_o + b_o
    (W_o = E_tgtᵀ when the embeddings are tied).

Every weight of the model must be read by the oracle (a parameter the equations do not account
for is an error too). Float32 model against float64 oracle: max |Δ logit| must stay below 1e-5.
"""

import numpy as np
import pytest
import tensorflow as tf

from nmt.model.seq2seq import ModelConfig, build_model
from nmt.text.tokenizer import BOS_ID, EOS_ID, PAD_ID

SRC_V, TGT_V = 13, 11
TINY = dict(embedding_dim=5, encoder_units=4, decoder_units=6, attention_units=3, output_dim=8)
# Two sentences, 0-padded at the end; the longer source goes with the shorter target and vice
# versa, so a source mask or a length taken from the wrong sentence shows.
SRC = np.array([[5, 6, 7, 8, 9, EOS_ID], [10, 11, EOS_ID, PAD_ID, PAD_ID, PAD_ID]], "int32")
TGT_IN = np.array([[BOS_ID, 4, 5, PAD_ID, PAD_ID], [BOS_ID, 6, 7, 8, 9]], "int32")
ATOL = 1e-5

VARIANTS = {
    "attention-maxout": dict(architecture="attention"),
    "attention-tanh": dict(architecture="attention", deep_output="tanh"),
    "attention-maxout-2layers": dict(architecture="attention", encoder_layers=2),
    "attention-maxout-tied": dict(architecture="attention", output_dim=10, tie_embeddings=True),
    "attention-sum-zeros": dict(architecture="attention", encoder_merge="sum", decoder_init="zeros"),
    "attention-backward-init": dict(architecture="attention", encoder_units=6, decoder_init="backward"),
    # attention after the decoder GRU (nmt/model/luong.py), every score and combination
    "luong-scaled_dot-residual-none": dict(
        architecture="attention",
        attention_position="luong",
        attention_score="scaled_dot",
        residual_norm=True,
        encoder_merge="sum",
        decoder_init="zeros",
        deep_output="none",
    ),
    "luong-dot-tanh-combine-maxout": dict(
        architecture="attention", attention_position="luong", attention_score="dot", encoder_layers=2
    ),
    "luong-additive-residual-tanh-backward": dict(
        architecture="attention",
        attention_position="luong",
        residual_norm=True,
        deep_output="tanh",
        encoder_units=6,
        decoder_init="backward",
    ),
    "luong-scaled_dot-none-tied": dict(
        architecture="attention",
        attention_position="luong",
        attention_score="scaled_dot",
        deep_output="none",
        embedding_dim=6,
        tie_embeddings=True,
    ),
    "cho2014-maxout": dict(architecture="cho2014"),
    "cho2014-tanh": dict(architecture="cho2014", deep_output="tanh"),
    "cho2014-tanh-tied-2layers": dict(
        architecture="cho2014",
        deep_output="tanh",
        output_dim=5,
        tie_embeddings=True,
        encoder_layers=2,
    ),
}


# ------------------------------------------------------------------------------ the oracle


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


class _Weights:
    """The model's variables as float64 arrays, by path without the model's name; records which
    ones the oracle read."""

    def __init__(self, model):
        self.arrays = {}
        for w in model.weights:
            prefix, _, rest = w.path.partition("/")
            assert prefix == model.name, w.path
            self.arrays[rest] = np.asarray(w.numpy(), dtype=np.float64)
        self.read = set()

    def __getitem__(self, name):
        self.read.add(name)
        return self.arrays[name]

    def unread(self):
        return sorted(set(self.arrays) - self.read)


def _gate_blocks(m, units):
    """[.., 3H] stored [z, r, h] -> (m_z, m_r, m_h)."""
    return m[..., :units], m[..., units : 2 * units], m[..., 2 * units :]


def _gru_step(x, h, gru, c=None):
    """The GRU of docs/DESIGN.md for one step: x [in], h [H], gru = dict of kernel / recurrent_kernel /
    bias (/ context_kernel), c [C] or None -> new h [H]."""
    units = h.shape[0]
    w_z, w_r, w_h = _gate_blocks(gru["kernel"], units)
    u_z, u_r, u_h = _gate_blocks(gru["recurrent_kernel"], units)
    b_z, b_r, b_h = _gate_blocks(gru["bias"], units)
    cz = cr = ch = 0.0
    if c is not None:
        c_z, c_r, c_h = _gate_blocks(gru["context_kernel"], units)
        cz, cr, ch = c @ c_z, c @ c_r, c @ c_h
    z = _sigmoid(x @ w_z + h @ u_z + cz + b_z)
    r = _sigmoid(x @ w_r + h @ u_r + cr + b_r)
    candidate = np.tanh(x @ w_h + (r * h) @ u_h + ch + b_h)
    return (1.0 - z) * h + z * candidate


def _gru_params(w, prefix, context=False):
    names = ["kernel", "recurrent_kernel", "bias"] + (["context_kernel"] if context else [])
    return {n: w[f"{prefix}/{n}"] for n in names}


def _run_gru(xs, gru, units):
    """xs [n, in] read in the given order from h_0 = 0 -> states [n, H]."""
    h = np.zeros(units)
    states = []
    for x in xs:
        h = _gru_step(x, h, gru)
        states.append(h)
    return np.array(states)


def _maxout(t):
    """Maxout over pairs of units. nmt/model/decoder.py pairs unit i with unit i + D/2 (documented there
    as the paper's pairs (2i−1, 2i) up to a permutation of O's columns), so the oracle pairs the
    same way: max(t[i], t[i + D/2])."""
    half = t.shape[-1] // 2
    return np.maximum(t[:half], t[half:])


def _logits(w, cfg, hidden, embedded, context):
    """Deep output from the new decoder state, the previous word's embedding and the context."""
    t = (
        hidden @ w["decoder/readout_state/kernel"]
        + w["decoder/readout_state/bias"]
        + embedded @ w["decoder/readout_embedding/kernel"]
        + context @ w["decoder/readout_context/kernel"]
    )
    u = _maxout(t) if cfg.deep_output == "maxout" else np.tanh(t)
    if cfg.tie_embeddings:
        return u @ w["decoder/embedding/embeddings"].T + w["decoder/projection_bias"]
    return u @ w["decoder/projection/kernel"] + w["decoder/projection/bias"]


def _bidirectional_encoder(w, cfg, src):
    """-> (h_j [S, C] with C = 2·units (concat) or units (sum), ←h_1 [units])."""
    units = cfg.encoder_units
    x = w["encoder/embedding/embeddings"][src]  # [S, E]
    for k in range(cfg.encoder_layers):
        base = f"encoder/bigru_{k}"
        fwd = _run_gru(x, _gru_params(w, f"{base}/forward_gru_{k}/cell"), units)
        bwd = _run_gru(x[::-1], _gru_params(w, f"{base}/backward_gru_{k}/cell"), units)[::-1]
        if cfg.encoder_merge == "sum":
            x = fwd + bwd  # h_j = →h_j + ←h_j: [S, units]
        else:
            x = np.concatenate([fwd, bwd], axis=1)  # h_j = [→h_j; ←h_j]: [S, 2·units]
    return x, bwd[0]  # ←h_1: the backward GRU's state after reading the whole sentence


def _first_state(w, cfg, backward_first):
    if cfg.decoder_init == "projection":
        return np.tanh(backward_first @ w["decoder/bridge/kernel"])  # tanh(←h_1·W_s)
    if cfg.decoder_init == "backward":
        return backward_first.copy()
    return np.zeros(cfg.decoder_units)


def _scores(w, cfg, query, annotations):
    """e_j for one query [H] over h_j [S, C] with the configured score."""
    q = query @ w["decoder/attention/query_kernel"]  # [A]
    keys = annotations @ w["decoder/attention/key_kernel"]  # [S, A]
    if cfg.attention_score == "additive":
        return np.array([w["decoder/attention/score_vector"] @ np.tanh(q + k) for k in keys])
    scores = keys @ q
    return scores / np.sqrt(q.shape[0]) if cfg.attention_score == "scaled_dot" else scores


def _layer_norm(x, gamma, beta, epsilon=1e-5):
    return (x - x.mean()) / np.sqrt(x.var() + epsilon) * gamma + beta


def _oracle_luong(w, cfg, src, tgt_in):
    """Attention after the decoder GRU (Luong et al. 2015 and the TensorFlow tutorial's recipe):
    h_t = GRU(e(y_{t-1}), h_{t-1}); α_t = softmax(score(h_t, h_j)); c_t = Σ_j α_tj h_j;
    o_t = LayerNorm(h_t + c_t·W_o + b_o) or tanh([c_t; h_t]·W_c); logits from o_t (deep output
    on (o_t, e(y_{t-1}), c_t) or directly)."""
    annotations, backward_first = _bidirectional_encoder(w, cfg, src)
    h = _first_state(w, cfg, backward_first)
    h0 = h
    gru = _gru_params(w, "decoder/gru/cell")
    emb = w["decoder/embedding/embeddings"]
    logits, alphas = [], []
    for y_prev in tgt_in:
        e_y = emb[y_prev]
        h = _gru_step(e_y, h, gru)  # no attention inside the recurrence
        alpha = _softmax(_scores(w, cfg, h, annotations))
        c = alpha @ annotations
        if cfg.residual_norm:
            o = _layer_norm(
                h + c @ w["decoder/attention_output/kernel"] + w["decoder/attention_output/bias"],
                w["decoder/layer_norm/gamma"],
                w["decoder/layer_norm/beta"],
            )
        else:
            o = np.tanh(np.concatenate([c, h]) @ w["decoder/combine/kernel"])
        if cfg.deep_output == "none":
            if cfg.tie_embeddings:
                logits.append(o @ emb.T + w["decoder/projection_bias"])
            else:
                logits.append(o @ w["decoder/projection/kernel"] + w["decoder/projection/bias"])
        else:
            logits.append(_logits(w, cfg, o, e_y, c))
        alphas.append(alpha)
    return np.array(logits), np.array(alphas), h0


def _oracle_attention(w, cfg, src, tgt_in):
    """One sentence (real tokens only) -> (logits [T, V], alphas [T, S], s_0 [H])."""
    annotations, backward_first = _bidirectional_encoder(w, cfg, src)
    s = _first_state(w, cfg, backward_first)  # s_0
    s0 = s
    w_a = w["decoder/attention/query_kernel"]
    u_a = w["decoder/attention/key_kernel"]
    v_a = w["decoder/attention/score_vector"]
    gru = _gru_params(w, "decoder/gru_cell", context=True)
    emb = w["decoder/embedding/embeddings"]
    logits, alphas = [], []
    for y_prev in tgt_in:
        e_y = emb[y_prev]
        scores = np.array([v_a @ np.tanh(s @ w_a + h_j @ u_a) for h_j in annotations])
        alpha = _softmax(scores)
        c = alpha @ annotations  # c_i = Σ_j α_ij h_j
        s = _gru_step(e_y, s, gru, c)  # s_i from s_{i-1}, e(y_{i-1}) and c_i
        logits.append(_logits(w, cfg, s, e_y, c))
        alphas.append(alpha)
    return np.array(logits), np.array(alphas), s0


def _oracle_cho2014(w, cfg, src, tgt_in):
    """One sentence (real tokens only) -> (logits [T, V], None, h'_0 [H])."""
    x = w["encoder/embedding/embeddings"][src]
    for k in range(cfg.encoder_layers):
        x = _run_gru(x, _gru_params(w, f"encoder/gru_{k}/cell"), cfg.encoder_units)
    h_n = x[-1]  # the last state, after the last real token
    c = np.tanh(h_n @ w["decoder/summary/kernel"])  # summary c = tanh(V·h_N)
    h = np.tanh(c @ w["decoder/bridge/kernel"])  # h'_0 = tanh(V'·c)
    h0 = h
    gru = _gru_params(w, "decoder/gru/cell", context=True)
    emb = w["decoder/embedding/embeddings"]
    logits = []
    for y_prev in tgt_in:
        e_y = emb[y_prev]
        h = _gru_step(e_y, h, gru, c)  # c enters every gate at every step
        logits.append(_logits(w, cfg, h, e_y, c))
    return np.array(logits), None, h0


def _oracle(w, cfg, src, tgt_in):
    if cfg.architecture == "cho2014":
        return _oracle_cho2014(w, cfg, src, tgt_in)
    fn = _oracle_luong if cfg.attention_position == "luong" else _oracle_attention
    return fn(w, cfg, src, tgt_in)


# ------------------------------------------------------------------------------ the tests


def _random_model(seed=0, **overrides):
    """A tiny model with every weight and bias random and non-zero (no term hides behind a 0)."""
    cfg = ModelConfig(**dict(TINY, **overrides))
    model = build_model(cfg, SRC_V, TGT_V)
    rng = np.random.default_rng(seed)
    values = []
    for w in model.weights:
        v = rng.normal(scale=0.6, size=w.shape)
        v = np.where(np.abs(v) < 0.05, 0.05 * np.sign(v + 1e-12), v)  # bounded away from 0
        values.append(v.astype("float32"))
    model.set_weights(values)
    return cfg, model


def _real(row):
    return row[row != PAD_ID]


@pytest.fixture(scope="module", params=list(VARIANTS))
def case(request):
    cfg, model = _random_model(seed=list(VARIANTS).index(request.param), **VARIANTS[request.param])
    w = _Weights(model)
    oracles = [_oracle(w, cfg, _real(s), _real(t)) for s, t in zip(SRC, TGT_IN)]
    return cfg, model, w, oracles


def test_oracle_reads_every_weight(case):
    _, _, w, _ = case
    assert w.unread() == []


def test_teacher_forced_logits_equal_the_equations(case):
    cfg, model, _, oracles = case
    logits = model((SRC, TGT_IN), training=False).numpy()  # [B, T, V] float32
    log_probs = tf.nn.log_softmax(logits, axis=-1).numpy()
    for b, (want, _, _) in enumerate(oracles):
        n = want.shape[0]
        assert n == (TGT_IN[b] != PAD_ID).sum()
        got = logits[b, :n].astype(np.float64)
        np.testing.assert_allclose(got, want, rtol=0, atol=ATOL, err_msg=f"sentence {b}")
        want_lp = want - np.log(np.exp(want).sum(-1, keepdims=True))
        np.testing.assert_allclose(log_probs[b, :n], want_lp, rtol=0, atol=ATOL)
    # the test has teeth: the logits are far from constant across positions and sentences
    assert np.ptp(np.concatenate([o[0] for o in oracles])) > 1.0


def test_initial_state_and_attention_weights_equal_the_equations(case):
    """The decoder's s_0 / h'_0 from `encode`, and (attention) α_i from each `decode_step`."""
    cfg, model, _, oracles = case
    state = model.encode(SRC)
    h0 = state["recurrent"]["hidden"].numpy()
    for b, (_, _, want_h0) in enumerate(oracles):
        np.testing.assert_allclose(h0[b], want_h0, rtol=0, atol=ATOL, err_msg=f"sentence {b}")
    for t in range(TGT_IN.shape[1]):
        _, state, attention = model.decode_step(tf.constant(TGT_IN[:, t]), state)
        if cfg.architecture != "attention":
            assert attention is None
            continue
        attention = attention.numpy()
        for b, (_, alphas, _) in enumerate(oracles):
            if t >= alphas.shape[0]:
                continue
            n = alphas.shape[1]
            np.testing.assert_allclose(attention[b, :n], alphas[t], rtol=0, atol=ATOL)
            assert np.all(attention[b, n:] == 0.0)

"""nmt.model.seq2seq: both architectures against independent oracles.

Oracles: teacher forcing = the sum of step-by-step decode_step log-probabilities; a sentence alone =
the same sentence in a padded batch; attention is a distribution over the real source positions;
an untrained model's loss ≈ log(V); a small model memorises 32 pairs; parameter counts = a formula
written here from the papers' equations; `.keras` round trip; the fused attention step = the
GRU cell's own step on the attention layer's own context; the attention decoder's hand-written
gradient = TensorFlow's autodiff of the same loop (`_autodiff_recurrence`, written here).
"""

import dataclasses
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from nmt.errors import UserError
from nmt.model import bahdanau
from nmt.model.bahdanau import attention_gru_recurrence, attention_gru_step
from nmt.model.seq2seq import AttentionModel, Cho2014Model, ModelConfig, build_model

SRC_V, TGT_V = 19, 23
SMALL = dict(embedding_dim=8, encoder_units=6, decoder_units=10, attention_units=7, output_dim=8)
# Three sentences of different lengths, 0-padded at the end (BOS=2, EOS=3).
SRC = np.array([[5, 6, 7, 8, 9, 3], [10, 11, 3, 0, 0, 0], [12, 13, 14, 3, 0, 0]], "int32")
TGT_IN = np.array([[2, 5, 6, 7, 8], [2, 9, 10, 0, 0], [2, 11, 0, 0, 0]], "int32")
TGT_OUT = np.array([[5, 6, 7, 8, 3], [9, 10, 3, 0, 0], [11, 3, 0, 0, 0]], "int32")

FAST = dict(
    architecture="attention",
    attention_position="luong",
    attention_score="scaled_dot",
    residual_norm=True,
    encoder_merge="sum",
    decoder_init="zeros",
    deep_output="none",
)
VARIANTS = {  # (architecture, deep_output, tie_embeddings, encoder_layers, attention options)
    "cho2014": dict(architecture="cho2014"),
    "cho2014-tanh-tied-2layers": dict(
        architecture="cho2014", deep_output="tanh", tie_embeddings=True, encoder_layers=2
    ),
    "attention": dict(architecture="attention"),
    "attention-2layers": dict(architecture="attention", encoder_layers=2),
    "attention-tanh-tied": dict(architecture="attention", deep_output="tanh", tie_embeddings=True),
    "attention-sum-zeros": dict(architecture="attention", encoder_merge="sum", decoder_init="zeros"),
    "luong-fast": dict(architecture="attention", **{k: v for k, v in FAST.items() if k != "architecture"}),
    "luong-dot-combine-maxout-2layers": dict(
        architecture="attention", attention_position="luong", attention_score="dot", encoder_layers=2
    ),
    "luong-additive-residual-tanh-backward": dict(
        architecture="attention",
        attention_position="luong",
        residual_norm=True,
        deep_output="tanh",
        encoder_units=10,
        decoder_init="backward",
    ),
}
# One of each decoder: the two papers' models and the fast recipe (configs/multi30k.yaml's options).
ARCHS = {"cho2014": dict(architecture="cho2014"), "attention": dict(architecture="attention"), "luong": FAST}


def _config(**overrides):
    values = dict(SMALL, embedding_dropout=0.2, layer_dropout=0.2, output_dropout=0.2)
    values.update(overrides)
    if values.get("tie_embeddings") and values.get("deep_output") == "tanh":
        values["output_dim"] = values["embedding_dim"]
    return ModelConfig(**values)


def _model(seed=0, **overrides):
    """A small model with every weight (biases included) random, so no term hides behind a 0."""
    keras.utils.set_random_seed(seed)
    model = build_model(_config(**overrides), SRC_V, TGT_V)
    rng = np.random.default_rng(seed)
    model.set_weights([0.5 * rng.normal(size=w.shape).astype("float32") for w in model.weights])
    return model


def _log_softmax(logits):
    return tf.nn.log_softmax(logits, axis=-1).numpy()


def _stepwise(model, src, tgt_in):
    """log_probs [B, T, V] and attentions from decode_step, fed the reference tokens."""
    state = model.encode(src)
    log_probs, attentions = [], []
    for t in range(tgt_in.shape[1]):
        lp, new_state, attention = model.decode_step(tf.constant(tgt_in[:, t]), state)
        assert new_state["memory"] is state["memory"]
        state = new_state
        log_probs.append(lp.numpy())
        attentions.append(None if attention is None else attention.numpy())
    return np.stack(log_probs, axis=1), attentions


def _sentence_scores(log_probs, tgt_out):
    picked = np.take_along_axis(log_probs, tgt_out[..., None], axis=-1)[..., 0]
    return (picked * (tgt_out != 0)).sum(axis=1)


# ---------------------------------------------------------------------------- config


def test_config_defaults_and_from_dict():
    cfg = ModelConfig()
    assert cfg.architecture == "attention" and cfg.readout_dim == 256
    assert ModelConfig.from_dict({"architecture": "cho2014"}).architecture == "cho2014"
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.embedding_dim = 3


@pytest.mark.parametrize(
    "values, field, hint",
    [
        ({"output_dim": 255}, "model.output_dim", "even"),
        ({"architecture": "transformer"}, "model.architecture", "cho2014, attention"),
        ({"deep_output": "relu"}, "model.deep_output", "maxout, tanh"),
        ({"embedding_dropout": 1.0}, "model.embedding_dropout", "[0, 1)"),
        ({"output_dropout": "0.1"}, "model.output_dropout", "[0, 1)"),
        ({"encoder_layers": 0}, "model.encoder_layers", "positive integer"),
        ({"decoder_units": 512.0}, "model.decoder_units", "positive integer"),
        ({"attention_units": True}, "model.attention_units", "positive integer"),
        ({"tie_embeddings": "yes"}, "model.tie_embeddings", "true or false"),
        ({"tie_embeddings": True, "output_dim": 256}, "model.tie_embeddings", "embedding_dim"),
        ({"hidden_size": 3}, "model.hidden_size", "unknown key"),
        ({"attention_position": "inside"}, "model.attention_position", "bahdanau, luong"),
        ({"attention_score": "dot"}, "model.attention_score", "attention_position luong"),
        ({"attention_score": "cosine"}, "model.attention_score", "additive, dot, scaled_dot"),
        ({"residual_norm": True}, "model.residual_norm", "attention_position luong"),
        ({"deep_output": "none"}, "model.deep_output", "attention_position luong"),
        ({"architecture": "cho2014", "encoder_merge": "sum"}, "model.encoder_merge", "cho2014"),
        ({"architecture": "cho2014", "decoder_init": "zeros"}, "model.decoder_init", "cho2014"),
        ({"encoder_merge": "mean"}, "model.encoder_merge", "concat, sum"),
        ({"decoder_init": "backward"}, "model.decoder_init", "encoder_units (256) equal to decoder_units (512)"),
        ({"residual_norm": "yes", "attention_position": "luong"}, "model.residual_norm", "true or false"),
    ],
)
def test_config_errors_are_one_line(values, field, hint):
    with pytest.raises(UserError) as err:
        ModelConfig.from_dict(values)
    message = str(err.value)
    assert message.startswith(field + ":") and hint in message and "\n" not in message


def test_build_model_checks_vocabulary_sizes():
    with pytest.raises(UserError, match="tgt_vocab_size"):
        build_model(ModelConfig(**SMALL), 10, 0)


# ---------------------------------------------------------------------------- oracles


@pytest.mark.parametrize("variant", VARIANTS)
def test_teacher_forcing_equals_stepwise_decoding(variant):
    model = _model(**VARIANTS[variant])
    teacher = _log_softmax(model((SRC, TGT_IN)))  # [B, T, V]
    stepwise, _ = _stepwise(model, SRC, TGT_IN)
    real = TGT_IN != 0
    np.testing.assert_allclose(stepwise[real], teacher[real], atol=1e-5)
    np.testing.assert_allclose(_sentence_scores(stepwise, TGT_OUT), _sentence_scores(teacher, TGT_OUT), atol=1e-4)


@pytest.mark.parametrize(
    "options", [{}, FAST, dict(FAST, attention_score="additive")], ids=["bahdanau", "luong", "luong-additive"]
)
def test_attention_is_a_distribution_over_real_source_positions(options):
    model = _model(**dict(options, architecture="attention"))
    _, attentions = _stepwise(model, SRC, TGT_IN)
    source_mask = SRC != 0
    for attention in attentions:
        assert attention.dtype == np.float32 and attention.shape == SRC.shape
        assert np.all(attention[~source_mask] == 0.0)
        np.testing.assert_allclose(attention.sum(-1), 1.0, atol=1e-6)
    assert _stepwise(_model(architecture="cho2014"), SRC, TGT_IN)[1] == [None] * TGT_IN.shape[1]


@pytest.mark.parametrize("architecture", ARCHS)
def test_sentence_alone_equals_sentence_in_padded_batch(architecture):
    model = _model(**ARCHS[architecture], encoder_layers=2)
    row = 2  # the shortest sentence: 4 source tokens, 2 target tokens
    src, tgt_in = SRC[row : row + 1, :4], TGT_IN[row : row + 1, :2]
    alone = model((src, tgt_in)).numpy()[0]
    in_batch = model((SRC, TGT_IN)).numpy()[row, :2]
    np.testing.assert_allclose(in_batch, alone, atol=1e-5)
    extra_padding = np.pad(src, [(0, 0), (0, 5)])  # padded source positions change nothing
    np.testing.assert_allclose(model((extra_padding, tgt_in)).numpy()[0], alone, atol=1e-5)
    step_alone, _ = _stepwise(model, src, tgt_in)
    step_batch, _ = _stepwise(model, SRC, TGT_IN)
    np.testing.assert_allclose(step_batch[row, :2], step_alone[0], atol=1e-5)


@pytest.mark.parametrize("architecture", ARCHS)
def test_padded_target_positions_do_not_change_earlier_ones(architecture):
    model = _model(**ARCHS[architecture])
    noisy = np.where(TGT_IN == 0, 17, TGT_IN).astype("int32")
    clean, other = model((SRC, TGT_IN)).numpy(), model((SRC, noisy)).numpy()
    real = TGT_IN != 0
    np.testing.assert_array_equal(other[real], clean[real])


def test_fused_attention_step_equals_cell_step():
    """The decoder's fused step = the GRU cell's own step fed the attention layer's own context."""
    model = _model(architecture="attention")
    decoder = model.decoder
    state = model.encode(SRC)
    memory, hidden = state["memory"], state["recurrent"]["hidden"]
    embedded = decoder.embedding(tf.constant(TGT_IN[:, 0]))
    projected = decoder.cell.input_projection(embedded)
    new_hidden, context, attention = decoder._advance(projected, hidden, memory, decoder._step_weights())
    ref_context, ref_attention = decoder.attention(hidden, memory["encoder_outputs"], value_mask=SRC != 0)
    ref_hidden = decoder.cell.step(projected + decoder.cell.context_projection(ref_context), hidden)
    np.testing.assert_allclose(attention.numpy(), ref_attention.numpy(), atol=1e-6)
    np.testing.assert_allclose(context.numpy(), ref_context.numpy(), atol=1e-6)
    np.testing.assert_allclose(new_hidden.numpy(), ref_hidden.numpy(), atol=1e-6)


def _autodiff_recurrence(projected, h0, memory, weights):
    """The oracle for `nmt.model.bahdanau.attention_gru_recurrence`: the same teacher-forced loop of
    `attention_gru_step`, differentiated by TensorFlow. projected [T, B, 3H], h0 [B, H] ->
    (states [T, B, H], contexts [T, B, C])."""
    steps = tf.shape(projected)[0]
    inputs = tf.TensorArray(projected.dtype, size=steps, element_shape=projected.shape[1:])
    inputs = inputs.unstack(projected)  # read per step: its gradient is a TensorArray too
    states = tf.TensorArray(h0.dtype, size=steps, element_shape=h0.shape)
    contexts = tf.TensorArray(memory["encoder_outputs"].dtype, size=steps)

    def body(t, hidden, states, contexts):
        hidden, context = attention_gru_step(inputs.read(t), hidden, memory, weights)[:2]
        return t + 1, hidden, states.write(t, hidden), contexts.write(t, context)

    _, _, states, contexts = tf.while_loop(
        lambda t, *_: t < steps, body, (0, h0, states, contexts), maximum_iterations=steps
    )
    return states.stack(), contexts.stack()


def test_hand_written_attention_gradient_equals_autodiff(monkeypatch):
    """The attention decoder's backward pass against TensorFlow's autodiff of the same loop,
    with padded sources, an all-padding source row and an unused (zero-gradient) last step."""
    model = _model(architecture="attention", encoder_layers=2)
    src = np.concatenate([SRC, np.zeros((1, SRC.shape[1]), "int32")])  # + an empty source
    tgt_in = np.concatenate([TGT_IN, TGT_IN[:1]])
    tgt_out = np.concatenate([TGT_OUT, TGT_OUT[:1]])
    weights = (tgt_out != 0).astype("float32")
    weights[:, -1] = 0.0

    def loss_and_grads(recurrence):
        # the decoder's own call, with its recurrence replaced by `recurrence`
        monkeypatch.setattr(bahdanau, "attention_gru_recurrence", recurrence)
        with tf.GradientTape() as tape:
            logits = model.decoder.call(tgt_in, model.encode(src))
            loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(tgt_out, logits) * weights)
        grads = tape.gradient(loss, model.trainable_variables)
        return loss.numpy(), [tf.convert_to_tensor(g).numpy() for g in grads]

    loss, grads = loss_and_grads(attention_gru_recurrence)
    ref_loss, ref_grads = loss_and_grads(_autodiff_recurrence)
    monkeypatch.undo()
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-6)
    for variable, grad, ref in zip(model.trainable_variables, grads, ref_grads):
        np.testing.assert_allclose(grad, ref, atol=1e-5, err_msg=variable.path)


@pytest.mark.parametrize("architecture", ARCHS)
def test_dropout_only_when_training(architecture):
    model = _model(**ARCHS[architecture])
    a, b = model((SRC, TGT_IN)).numpy(), model((SRC, TGT_IN), training=False).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(model((SRC, TGT_IN), training=True).numpy(), a)


@pytest.mark.parametrize("architecture", ARCHS)
def test_untrained_loss_is_close_to_log_vocabulary_size(architecture):
    keras.utils.set_random_seed(1)
    vocab = 500
    cfg = ModelConfig(**ARCHS[architecture], **SMALL)
    model = build_model(cfg, vocab, vocab)
    rng = np.random.default_rng(1)
    src = rng.integers(4, vocab, (8, 7)).astype("int32")
    tgt = rng.integers(4, vocab, (8, 7)).astype("int32")
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)
    loss = float(loss_fn(tgt[:, 1:], model((src, tgt[:, :-1]))))
    assert abs(loss - math.log(vocab)) < 0.1


def _pairs(n=32, vocab=16, seed=0):
    rng = np.random.default_rng(seed)
    src = np.zeros((n, 7), "int32")
    tgt_in = np.zeros((n, 7), "int32")
    tgt_out = np.zeros((n, 7), "int32")
    for i in range(n):
        s = rng.integers(4, vocab, rng.integers(3, 7))
        t = rng.integers(4, vocab, rng.integers(2, 7))
        src[i, : len(s) + 1] = list(s) + [3]
        tgt_in[i, : len(t) + 1] = [2] + list(t)
        tgt_out[i, : len(t) + 1] = list(t) + [3]
    return src, tgt_in, tgt_out


@pytest.mark.parametrize("architecture", ARCHS)
def test_small_model_memorises_32_pairs(architecture):
    keras.utils.set_random_seed(2)
    src, tgt_in, tgt_out = _pairs()
    cfg = ModelConfig(
        **ARCHS[architecture],
        embedding_dim=16,
        encoder_units=32,
        decoder_units=32,
        attention_units=16,
        output_dim=32,
    )
    model = build_model(cfg, 16, 16)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss=loss, jit_compile=False)
    history = model.fit((src, tgt_in), tgt_out, batch_size=16, epochs=45, verbose=0)
    assert history.history["loss"][0] > 2.0
    assert model.evaluate((src, tgt_in), tgt_out, verbose=0) < 0.05


# ---------------------------------------------------------------------------- Keras contract


def _expected_parameters(cfg, src_vocab, tgt_vocab):
    """Counted from the equations: a GRU with input i, state h and context k has W [i, 3h],
    U [h, 3h], b [3h] and C [k, 3h]."""
    e, he, hd, a, d = (
        cfg.embedding_dim,
        cfg.encoder_units,
        cfg.decoder_units,
        cfg.attention_units,
        cfg.output_dim,
    )

    def gru(i, h, k=0):
        return i * 3 * h + h * 3 * h + 3 * h + k * 3 * h

    directions = 2 if cfg.architecture == "attention" else 1
    # the encoder's output size, what the decoder's context has
    c = he if cfg.encoder_merge == "sum" else directions * he
    n = src_vocab * e + tgt_vocab * e  # embeddings
    for layer in range(cfg.encoder_layers):
        n += directions * gru(e if layer == 0 else c, he)
    if cfg.architecture == "cho2014":
        n += he * he + he * hd  # V (c = tanh(V·h_N)) and V' (h'_0 = tanh(V'·c)), no biases
    else:
        if cfg.decoder_init == "projection":
            n += he * hd  # W_s (s_0 = tanh(W_s·←h_1)), no bias
        n += hd * a + c * a  # W_a, U_a
        if cfg.attention_score == "additive":
            n += a  # v_a
    if cfg.attention_position == "luong":
        n += gru(e, hd)  # decoder GRU on the previous word only
        if cfg.residual_norm:
            n += c * hd + hd + 2 * hd  # W_o, b_o; LayerNorm's γ and β
        else:
            n += (c + hd) * hd  # W_c of tanh([c; h]·W_c)
    else:
        n += gru(e, hd, c)  # decoder GRU, context in every gate
    if cfg.deep_output != "none":
        n += hd * d + d + e * d + c * d  # deep output O_h (+ bias), O_y, O_c
    readout = {"maxout": d // 2, "tanh": d, "none": hd}[cfg.deep_output]
    n += tgt_vocab if cfg.tie_embeddings else readout * tgt_vocab + tgt_vocab
    return n


@pytest.mark.parametrize("variant", VARIANTS)
def test_parameter_count_matches_formula_and_summary(variant):
    model = _model(**VARIANTS[variant])
    expected = _expected_parameters(model.model_config, SRC_V, TGT_V)
    assert model.count_params() == expected
    lines = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line))
    assert any("Total params" in line and f"{expected:,}" in line for line in lines)


def test_parameter_count_at_the_comparison_size():
    cfg = ModelConfig()  # defaults: the comparison model
    model = build_model(cfg, 8000, 8000)
    assert model.count_params() == _expected_parameters(cfg, 8000, 8000)


@pytest.mark.parametrize("architecture", ARCHS)
def test_keras_file_round_trip(architecture, tmp_path):
    model = _model(**ARCHS[architecture], encoder_layers=2)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model) is (Cho2014Model if architecture == "cho2014" else AttentionModel)
    assert loaded.model_config == model.model_config
    np.testing.assert_array_equal(loaded((SRC, TGT_IN)).numpy(), model((SRC, TGT_IN)).numpy())
    np.testing.assert_array_equal(_stepwise(loaded, SRC, TGT_IN)[0], _stepwise(model, SRC, TGT_IN)[0])


# ---------------------------------------------------------------------------- precision, XLA


def test_mixed_bfloat16_runs_with_float32_logits():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        for architecture in ARCHS.values():
            model = build_model(ModelConfig(**architecture, **SMALL), SRC_V, TGT_V)
            assert model.decoder.compute_dtype == "bfloat16"
            with tf.GradientTape() as tape:
                logits = model((SRC, TGT_IN), training=True)
                loss = tf.reduce_mean(logits)
            assert logits.dtype == tf.float32 and np.all(np.isfinite(logits.numpy()))
            grads = tape.gradient(loss, model.trainable_variables)
            assert all(g is not None and g.dtype == tf.float32 for g in grads)
            state = model.encode(SRC)
            log_probs, _, attention = model.decode_step(tf.constant(TGT_IN[:, 0]), state)
            assert log_probs.dtype == tf.float32
            assert attention is None or attention.dtype == tf.float32
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_xla_compiles_call_gradient_and_step():
    model = _model(architecture="attention")
    src, tgt_in, tgt_out = (tf.constant(a) for a in (SRC, TGT_IN, TGT_OUT))

    @tf.function(jit_compile=True)
    def loss_and_grads(src, tgt_in, tgt_out):
        with tf.GradientTape() as tape:
            logits = model((src, tgt_in), training=False)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(tgt_out, logits))
        return logits, tape.gradient(loss, model.trainable_variables)

    logits, grads = loss_and_grads(src, tgt_in, tgt_out)
    ref_logits, ref_grads = loss_and_grads.python_function(src, tgt_in, tgt_out)  # eager
    np.testing.assert_allclose(logits.numpy(), ref_logits.numpy(), atol=1e-5)
    for grad, ref in zip(grads, ref_grads):
        np.testing.assert_allclose(tf.convert_to_tensor(grad).numpy(), tf.convert_to_tensor(ref).numpy(), atol=1e-5)

    for model in (model, _model(architecture="cho2014"), _model(**FAST)):  # noqa: B020  (attention, cho2014, luong)
        step = tf.function(model.decode_step, jit_compile=True)
        state = tf.function(model.encode, jit_compile=True)(src)
        log_probs, new_state, attention = step(tgt_in[:, 0], state)
        ref_log_probs, ref_state, ref_attention = model.decode_step(tgt_in[:, 0], state)
        np.testing.assert_allclose(log_probs.numpy(), ref_log_probs.numpy(), atol=1e-5)
        np.testing.assert_allclose(
            new_state["recurrent"]["hidden"].numpy(),
            ref_state["recurrent"]["hidden"].numpy(),
            atol=1e-6,
        )
        if attention is not None:
            np.testing.assert_allclose(attention.numpy(), ref_attention.numpy(), atol=1e-6)


def _round_bf16(a):
    """Rounds to the nearest bfloat16 (as TensorFlow's cast does), as float32."""
    return tf.cast(tf.cast(a, tf.bfloat16), tf.float32).numpy()


def test_mixed_bfloat16_attention_decoder_keeps_its_state_in_float32():
    """Under mixed_bfloat16 Bahdanau's decoder runs only its matmuls in bfloat16, as nmt.model.gru does:
    its states come back in float32 (not rounded to bfloat16) and stay closer to the float32 model
    with the same weights than the same loop run all in bfloat16 (state, gates and attention rounded
    at every step); decoding step by step gives teacher forcing's logits; and the hand-written
    gradient equals autodiff of the same mixed loop."""
    cfg = ModelConfig(**ARCHS["attention"], **{**SMALL, "decoder_units": 32, "attention_units": 16})
    rng = np.random.default_rng(5)
    src = rng.integers(1, SRC_V, (4, 12)).astype("int32")
    src[1, 7:] = 0  # a padded source
    tgt_in = rng.integers(1, TGT_V, (4, 30)).astype("int32")
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        mixed = build_model(cfg, SRC_V, TGT_V)
        mixed((src, tgt_in))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    # random weights at the scale of trained ones (fan-in^-1/2), so the states are far from 0
    weights = [
        (rng.normal(size=w.shape) * (w.shape[0] ** -0.5 if len(w.shape) > 1 else 0.5)).astype("float32")
        for w in mixed.get_weights()
    ]
    mixed.set_weights(weights)
    ref = build_model(cfg, SRC_V, TGT_V)
    ref((src, tgt_in))
    ref.set_weights(weights)

    def inputs(model):
        decoder, state = model.decoder, model.encode(src)
        hidden = state["recurrent"]["hidden"]
        projected = decoder.cell.input_projection(tf.transpose(decoder.embed(tgt_in), [1, 0, 2]))
        return tf.cast(projected, hidden.dtype), hidden, state["memory"], decoder._step_weights()

    projected, h0, memory, weights = inputs(mixed)
    assert h0.dtype == memory["keys"].dtype == weights["score_vector"].dtype == tf.float32
    assert weights["hidden_kernel"].dtype == memory["encoder_outputs"].dtype == tf.bfloat16
    states = attention_gru_recurrence(projected, h0, memory, weights)[0]
    assert states.dtype == tf.float32
    states = states.numpy()
    assert np.mean(states != _round_bf16(states)) > 0.9  # not rounded to bfloat16 at each step
    want = attention_gru_recurrence(*inputs(ref))[0].numpy()
    # the same loop with everything in bfloat16 (what the decoder did before)
    all_bf16 = {k: tf.cast(v, tf.bfloat16) if v.dtype == tf.float32 else v for k, v in memory.items()}
    all_bf16["source_mask"] = memory["source_mask"]
    w_bf16 = {k: tf.cast(v, tf.bfloat16) for k, v in weights.items()}
    rounded = _autodiff_recurrence(tf.cast(projected, tf.bfloat16), tf.cast(h0, tf.bfloat16), all_bf16, w_bf16)[0]
    err, err_rounded = np.abs(states - want), np.abs(tf.cast(rounded, tf.float32).numpy() - want)
    # measured: mean |error| 9.1e-4 against 1.5e-3 all in bfloat16 (|states| 0.51 on average); both
    # share the bfloat16 products, whose rounding is most of the remaining difference
    assert err.mean() < 0.8 * err_rounded.mean() and err.max() < 2e-2, (err.mean(), err_rounded.mean(), err.max())

    # decoding step by step reaches teacher forcing's states, in the same mixed arithmetic
    state, stepwise = mixed.encode(src), []
    for t in range(tgt_in.shape[1]):
        state = mixed.decode_step(tf.constant(tgt_in[:, t]), state)[1]
        assert state["recurrent"]["hidden"].dtype == tf.float32
        stepwise.append(state["recurrent"]["hidden"].numpy())
    np.testing.assert_allclose(np.stack(stepwise), states, atol=1e-5)

    # the hand-written backward pass against TensorFlow's autodiff of the same mixed loop
    cot = tf.constant(rng.normal(size=states.shape).astype("float32"))

    def grads(run):
        args = [projected, h0, memory["keys"], weights["hidden_kernel"], weights["candidate_kernel"]]
        with tf.GradientTape() as tape:
            tape.watch(args)
            mem = {**memory, "keys": args[2]}
            w = {**weights, "hidden_kernel": args[3], "candidate_kernel": args[4]}
            loss = tf.reduce_sum(run(args[0], args[1], mem, w)[0] * cot)
        return [tf.cast(g, tf.float32).numpy() for g in tape.gradient(loss, args)]

    for name, got, ref_grad in zip(
        ("projected", "h0", "keys", "hidden_kernel", "candidate_kernel"),
        grads(attention_gru_recurrence),
        grads(_autodiff_recurrence),
    ):
        rel = np.linalg.norm(got - ref_grad) / np.linalg.norm(ref_grad)
        # float32 inputs: the same arithmetic (measured 1e-7); bfloat16 kernels: autodiff adds the
        # per-step gradients in bfloat16, the hand-written pass in one product (measured 5e-3;
        # bfloat16 keeps 8 bits, 3.9e-3 relative)
        assert rel < (1e-5 if name in ("projected", "h0", "keys") else 2e-2), (name, rel)

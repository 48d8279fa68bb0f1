"""nmt.model.gru against independent oracles: Keras' own GRU, a NumPy loop, autodiff of a plain loop."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from nmt.model import gru as nmt_gru
from nmt.model.gru import GRU

B, T, E, H = 4, 7, 5, 6
MASK = np.array([[1] * 7, [1] * 4 + [0] * 3, [1] + [0] * 6, [1] * 6 + [0]], dtype=bool)  # mixed lengths 7, 4, 1, 6


def _inputs(seed=0, shape=(B, T, E)):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _flip_z(kernel, recurrent_kernel, bias, units):
    """Keras' GRU mixes z·h + (1−z)·h̃; negating the update-gate block gives our convention."""
    k, rk, b = (np.array(w, copy=True) for w in (kernel, recurrent_kernel, bias))
    k[:, :units] *= -1
    rk[:, :units] *= -1
    b[:units] *= -1
    return k, rk, b


def _random_bias(layer, seed):
    """Keras initialises biases to zero, which would hide a bias bug: randomise them, each bias its own
    draw (so the two directions of a Bidirectional layer differ, and swapping them shows)."""
    rng = np.random.default_rng(seed)
    biases = [w for w in layer.weights if "bias" in w.path]
    for w in biases:
        w.assign(rng.normal(size=w.shape).astype("float32"))
    if len(biases) == 2:
        assert not np.allclose(biases[0].numpy(), biases[1].numpy())


def _pair(seed=0, **kwargs):
    """An nmt GRU and a keras GRU(reset_after=False) computing the same function."""
    ref = keras.layers.GRU(H, reset_after=False, **kwargs)
    ours = GRU(H, **kwargs)
    ref(_inputs())
    ours(_inputs())
    _random_bias(ref, seed)
    ours.set_weights(list(_flip_z(*[w.numpy() for w in ref.weights], H)))
    return ours, ref


def _close(a, b, atol):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=atol, rtol=0)


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_matches_keras_gru(go_backwards, return_sequences, masked):
    ours, ref = _pair(return_sequences=return_sequences, return_state=True, go_backwards=go_backwards)
    x = _inputs(1)
    mask = MASK if masked else None
    h0 = _inputs(2, (B, H))
    for init in (None, h0):
        out, state = ours(x, mask=mask, initial_state=init)
        ref_out, ref_state = ref(x, mask=mask, initial_state=init)
        _close(out, ref_out, 1e-5)
        _close(state, ref_state, 1e-5)


def test_masked_step_keeps_state_and_repeats_it():
    layer = GRU(H, return_sequences=True)
    x = _inputs(3)
    out = layer(x, mask=MASK).numpy()
    # Sentence 1 has length 4: outputs at steps 4..6 repeat the state after step 3.
    for t in range(4, 7):
        np.testing.assert_array_equal(out[1, t], out[1, 3])
    # The masked state does not depend on what the padded steps contain.
    x2 = x.copy()
    x2[1, 4:] = 100.0
    np.testing.assert_array_equal(layer(x2, mask=MASK).numpy()[1], out[1])


def test_embedding_mask_zero_propagates():
    ids = np.array([[5, 3, 2, 0, 0], [1, 2, 3, 4, 5]], dtype="int32")
    emb = keras.layers.Embedding(10, E, mask_zero=True)
    layer = GRU(H, return_sequences=True)
    out = layer(emb(ids)).numpy()
    explicit = layer(emb(ids), mask=ids != 0).numpy()
    np.testing.assert_array_equal(out, explicit)
    np.testing.assert_array_equal(out[0, 3], out[0, 2])
    # Functional model: the mask flows from Embedding into the GRU.
    inp = keras.Input((None,), dtype="int32")
    model = keras.Model(inp, GRU(H)(keras.layers.Embedding(10, E, mask_zero=True)(inp)))
    short = model(np.array([[5, 3, 2]], "int32")).numpy()
    padded = model(np.array([[5, 3, 2, 0, 0, 0]], "int32")).numpy()
    _close(short, padded, 1e-6)


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_bidirectional_matches_keras(masked, return_sequences):
    ref = keras.layers.Bidirectional(
        keras.layers.GRU(H, reset_after=False, return_sequences=return_sequences, return_state=True)
    )
    ours = keras.layers.Bidirectional(GRU(H, return_sequences=return_sequences, return_state=True))
    x = _inputs(4)
    ref(x)
    ours(x)
    _random_bias(ref, 5)
    weights = [w.numpy() for w in ref.weights]
    ours.set_weights(list(_flip_z(*weights[:3], H)) + list(_flip_z(*weights[3:], H)))
    mask = MASK if masked else None
    init = [_inputs(6, (B, H)), _inputs(7, (B, H))]
    got = ours(x, mask=mask, initial_state=init)
    want = ref(x, mask=mask, initial_state=init)
    assert len(got) == len(want) == 3
    for a, b in zip(got, want):
        _close(a, b, 1e-5)


@pytest.mark.parametrize("go_backwards", [False, True])
def test_gradients_match_keras(go_backwards):
    ours, ref = _pair(seed=8, return_sequences=True, return_state=True, go_backwards=go_backwards)
    x = tf.constant(_inputs(9))
    h0 = tf.constant(_inputs(10, (B, H)))
    target = tf.constant(_inputs(11, (B, T, H)))

    def loss(layer):
        out, state = layer(x, mask=MASK, initial_state=h0)
        return tf.reduce_sum(out * target) + tf.reduce_sum(tf.sin(state))

    grads = []
    for layer in (ours, ref):
        with tf.GradientTape() as tape:
            tape.watch([x, h0])
            value = loss(layer)
        grads.append(tape.gradient(value, [x, h0] + layer.trainable_weights))
    got, want = grads
    _close(got[0], want[0], 1e-4)
    _close(got[1], want[1], 1e-4)
    for g, w in zip(got[2:], _flip_z(*[w.numpy() for w in want[2:]], H)):
        _close(g, w, 1e-4)


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("steps", [1, 2, 9])
def test_gradients_match_keras_in_a_graph(steps, training):
    """In a tf.function (one step, two, nine), masked, from a random initial state, in training (the
    backward pass reads the forward loop's TensorLists) and in inference (stacked copies): outputs,
    last state and every gradient against Keras' GRU."""
    ours, ref = _pair(seed=30 + steps, return_sequences=True, return_state=True)
    x = tf.constant(_inputs(31, (B, steps, E)))
    h0 = tf.constant(_inputs(32, (B, H)))
    mask = tf.constant(np.arange(steps)[None] < np.array([steps, max(1, steps - 2), 1, steps])[:, None])
    target = tf.constant(_inputs(33, (B, steps, H)))

    def run(layer):
        @tf.function
        def fwd_bwd(x, h0):
            with tf.GradientTape() as tape:
                tape.watch([x, h0])
                out, state = layer(x, mask=mask, initial_state=h0, training=training)
                value = tf.reduce_sum(out * target) + tf.reduce_sum(tf.sin(state))
            return out, state, tape.gradient(value, [x, h0] + layer.trainable_weights)

        return fwd_bwd(x, h0)

    (out, state, got), (want_out, want_state, want) = run(ours), run(ref)
    _close(out, want_out, 1e-5)
    _close(state, want_state, 1e-5)
    for g, w in zip(got[:2], want[:2]):
        _close(g, w, 1e-4)
    for g, w in zip(got[2:], _flip_z(*[w.numpy() for w in want[2:]], H)):
        _close(g, w, 1e-4)


def _numpy_gru(x, h0, kernel, recurrent_kernel, bias, context=None, context_kernel=None):
    """The four equations of docs/DESIGN.md, one step at a time."""
    sig = lambda a: 1.0 / (1.0 + np.exp(-a))
    wz, wr, wh = np.split(kernel, 3, axis=1)
    uz, ur, uh = np.split(recurrent_kernel, 3, axis=1)
    bz, br, bh = np.split(bias, 3)
    cz = cr = ch = 0.0
    if context is not None:
        kz, kr, kh = np.split(context_kernel, 3, axis=1)
        cz, cr, ch = context @ kz, context @ kr, context @ kh
    h = h0
    states = []
    for t in range(x.shape[1]):
        xt = x[:, t]
        r = sig(xt @ wr + h @ ur + cr + br)
        z = sig(xt @ wz + h @ uz + cz + bz)
        cand = np.tanh(xt @ wh + (r * h) @ uh + ch + bh)
        h = (1 - z) * h + z * cand
        states.append(h)
    return np.stack(states, axis=1)


def test_numpy_loop_of_the_equations():
    rng = np.random.default_rng(12)
    x = rng.normal(size=(2, 3, 4))
    h0 = rng.normal(size=(2, 3))
    layer = GRU(3, return_sequences=True)
    layer(x.astype("float32"))
    weights = [rng.normal(size=w.shape) * 0.7 for w in layer.weights]
    layer.set_weights([w.astype("float32") for w in weights])
    got = layer(x.astype("float32"), initial_state=h0.astype("float32")).numpy()
    _close(got, _numpy_gru(x, h0, *weights), 1e-5)


def test_context_equals_concatenated_inputs():
    ctx_dim = 3
    x = _inputs(13)
    ctx = _inputs(14, (B, ctx_dim))
    with_ctx = GRU(H, return_sequences=True, return_state=True)
    with_ctx(x, context=ctx)
    rng = np.random.default_rng(15)
    kernel, rk, bias, ck = (rng.normal(size=w.shape).astype("float32") for w in with_ctx.weights)
    with_ctx.set_weights([kernel, rk, bias, ck])
    concat = GRU(H, return_sequences=True, return_state=True)
    x_cat = np.concatenate([x, np.repeat(ctx[:, None], T, axis=1)], axis=-1)
    concat(x_cat)
    concat.set_weights([np.concatenate([kernel, ck], axis=0), rk, bias])
    for mask in (None, MASK):
        got = with_ctx(x, context=ctx, mask=mask)
        want = concat(x_cat, mask=mask)
        for a, b in zip(got, want):
            _close(a, b, 1e-5)
    # Gradients flow to the context and its kernel like to the concatenated input.
    ctx_t, x_t = tf.constant(ctx), tf.constant(x_cat)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([ctx_t, x_t])
        a = tf.reduce_sum(with_ctx(x, context=ctx_t)[0] ** 2)
        b = tf.reduce_sum(concat(x_t)[0] ** 2)
    _close(tape.gradient(a, ctx_t), tf.reduce_sum(tape.gradient(b, x_t)[:, :, E:], axis=1), 1e-4)
    _close(tape.gradient(a, with_ctx.weights[3]), tape.gradient(b, concat.weights[0])[E:], 1e-4)
    # And the NumPy oracle agrees.
    _close(with_ctx(x, context=ctx)[0], _numpy_gru(x, np.zeros((B, H)), kernel, rk, bias, ctx, ck), 1e-5)


def test_context_projection_is_computed_once_per_sequence(monkeypatch):
    layer = GRU(H, return_sequences=True)
    x, ctx = _inputs(16), _inputs(17, (B, 3))
    layer(x, context=ctx)
    calls = []
    original = layer.cell.context_projection
    monkeypatch.setattr(layer.cell, "context_projection", lambda c: calls.append(1) or original(c))
    layer(x, context=ctx)  # eager: a projection inside the loop would run T times
    assert len(calls) == 1


def test_one_step_cell_matches_layer():
    layer = GRU(H, return_sequences=True)
    x, ctx, h0 = _inputs(18), _inputs(19, (B, 3)), _inputs(20, (B, H))
    seq = layer(x, context=ctx, initial_state=h0).numpy()
    h = tf.constant(h0)
    for t in range(T):
        h, states = layer.cell(x[:, t], h, context=ctx)
        _close(h, seq[:, t], 1e-5)
    # The decoder path: project the context once, then step.
    ctx_proj = layer.cell.context_projection(ctx)
    h = tf.constant(h0)
    for t in range(T):
        h = layer.cell.step(layer.cell.input_projection(x[:, t]) + ctx_proj, h)
    _close(h, seq[:, -1], 1e-5)


def _plain_step(xp, h, u, rec_mask=None):
    """One step of the equations of docs/DESIGN.md written out in TensorFlow, the oracle that autodiff
    differentiates. xp [B, 3H] (x·W + b, blocks [z, r, h]), h [B, H], u [H, 3H], rec_mask [B, H] or
    None (recurrent dropout on what the recurrent weights read) -> h_new [B, H]."""
    hd = h if rec_mask is None else h * rec_mask
    x_z, x_r, x_h = tf.split(xp, 3, axis=-1)
    u_z, u_r, u_h = tf.split(u, 3, axis=-1)
    z = tf.sigmoid(x_z + tf.matmul(hd, u_z))
    r = tf.sigmoid(x_r + tf.matmul(hd, u_r))
    cand = tf.tanh(x_h + tf.matmul(r * hd, u_h))  # reset before the matmul
    return (1 - z) * h + z * cand


@pytest.mark.parametrize("read_lists", [False, True])
@pytest.mark.parametrize("graph", [False, True])
def test_recurrent_dropout_gradient_matches_autodiff(read_lists, graph):
    """The hand-written backward pass against TF's autodiff of a plain loop, with all options: the
    kept gates read from the forward loop's TensorLists (training) or from stacked copies, eagerly
    and in a tf.function."""
    rng = np.random.default_rng(21)
    xp = tf.constant(rng.normal(size=(T, B, 3 * H)).astype("float32"))
    h0 = tf.constant(rng.normal(size=(B, H)).astype("float32"))
    u = tf.constant(rng.normal(size=(H, 3 * H)).astype("float32") * 0.5)
    step_mask = tf.constant(MASK.T[:, :, None].astype("float32"))
    rec_mask = tf.constant((rng.random((B, H)) > 0.3).astype("float32") / 0.7)
    weights = tf.constant(rng.normal(size=(T, B, H)).astype("float32"))

    def plain(xp, h0, u):
        h, outs = h0, []
        for t in range(T):
            new = _plain_step(xp[t], h, u, rec_mask)
            h = h + step_mask[t] * (new - h)
            outs.append(h)
        return tf.stack(outs), h

    results = []

    def ours(xp, h0, u):
        return nmt_gru._gru_recurrence(*tf.split(xp, 3, axis=-1), h0, step_mask, u, rec_mask, read_lists=read_lists)

    def fwd_bwd(fn, xp, h0, u):
        with tf.GradientTape() as tape:
            tape.watch([xp, h0, u])
            states, last = fn(xp, h0, u)
            loss = tf.reduce_sum(states * weights) + tf.reduce_sum(last**2)
        return states, last, tape.gradient(loss, [xp, h0, u])

    for fn in (plain, ours):
        run = tf.function(fwd_bwd, autograph=False) if graph and fn is ours else fwd_bwd
        results.append(run(fn, xp, h0, u))
    (s1, l1, g1), (s2, l2, g2) = results
    _close(s1, s2, 1e-5)
    _close(l1, l2, 1e-5)
    for a, b in zip(g1, g2):
        _close(a, b, 1e-4)


def test_dropout_only_in_training():
    layer = GRU(H, dropout=0.5, recurrent_dropout=0.5, seed=1)
    x = _inputs(22)
    a = layer(x, training=False).numpy()
    np.testing.assert_array_equal(a, layer(x).numpy())
    assert not np.allclose(a, layer(x, training=True).numpy())
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x, training=True))
    grads = tape.gradient(loss, layer.trainable_weights)
    assert all(g is not None and np.isfinite(g.numpy()).all() for g in grads)


def test_config_round_trip_and_keras_file(tmp_path):
    inp = keras.Input((None, E))
    ctx = keras.Input((3,))
    seq = keras.layers.Bidirectional(GRU(H, return_sequences=True, go_backwards=False))(inp)
    out = GRU(H, go_backwards=True, dropout=0.1)(seq, context=ctx)
    model = keras.Model([inp, ctx], out)
    x, c = _inputs(23), _inputs(24, (B, 3))
    before = model.predict([x, c], verbose=0)
    path = tmp_path / "gru.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    np.testing.assert_array_equal(reloaded.predict([x, c], verbose=0), before)

    layer = GRU(H, return_sequences=True, return_state=True, go_backwards=True, recurrent_dropout=0.2)
    clone = GRU.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_close_to_float32(policy):
    ref = GRU(H, return_sequences=True)
    x = _inputs(25)
    ref(x)
    _random_bias(ref, 28)  # the biases take the mixed path too
    want = ref(x, mask=MASK).numpy()
    mixed = GRU(H, return_sequences=True, dtype=policy)
    mixed(x)
    mixed.set_weights(ref.get_weights())
    assert mixed.cell.kernel.dtype == "float32"  # float32 master weights
    got = mixed(x, mask=MASK)
    assert got.dtype == keras.mixed_precision.Policy(policy).compute_dtype
    tol = 2e-2 if policy == "mixed_float16" else 6e-2
    _close(tf.cast(got, tf.float32), want, tol)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.cast(mixed(x, mask=MASK, training=True), tf.float32))
    grads = tape.gradient(loss, mixed.trainable_weights)
    assert all(g.dtype == tf.float32 and np.isfinite(g.numpy()).all() for g in grads)


@pytest.mark.parametrize("training", [False, True])
def test_jit_compile_matches_eager(training):
    """Under XLA (as `fit` compiles the training step; training reads the forward loop's TensorLists)
    against Keras' GRU and against the layer run eagerly."""
    ours, ref = _pair(seed=26, return_sequences=True, return_state=True)
    x = tf.constant(_inputs(27))
    mask = tf.constant(MASK)

    @tf.function(jit_compile=True)
    def fwd_bwd(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            out, state = ours(x, mask=mask, training=training)
            loss = tf.reduce_sum(out**2) + tf.reduce_sum(state)
        return out, tape.gradient(loss, [x] + ours.trainable_weights)

    out, grads = fwd_bwd(x)
    _close(out, ref(x, mask=mask)[0], 1e-5)
    with tf.GradientTape() as tape:
        tape.watch(x)
        o, s = ours(x, mask=mask, training=training)
        loss = tf.reduce_sum(o**2) + tf.reduce_sum(s)
    eager = tape.gradient(loss, [x] + ours.trainable_weights)
    # XLA and eager sum each weight gradient's B·T terms in different orders (oneDNN also splits
    # them across threads, so the order varies from run to run): they agree to float32 rounding
    # relative to the value, not to 1e-5 absolute (seen: 1.12e-5 apart at 0.908, about 1 run in 15).
    for a, b in zip(grads, eager):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, rtol=1e-5)


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="units"):
        GRU(0)
    with pytest.raises(ValueError, match="dropout"):
        GRU(4, dropout=1.5)
    with pytest.raises(ValueError, match="batch, time, features"):
        GRU(4)(np.zeros((2, 3), "float32"))
    with pytest.raises(ValueError, match="without a context"):
        layer = GRU(4)
        layer(_inputs())
        layer.cell.context_projection(np.zeros((B, 2), "float32"))


def _round_bf16(a):
    """Rounds to the nearest bfloat16 (as TensorFlow's cast does), returned as float64."""
    return tf.cast(tf.cast(tf.constant(a, tf.float32), tf.bfloat16), tf.float64).numpy()


def _mixed_oracle(x, kernel, recurrent_kernel, bias, mask):
    """Float64 NumPy GRU in which only the products are bfloat16: each matmul's operands and result
    are rounded to bfloat16 (the input projection with its bias, as one bfloat16 op), and the state
    and every gate stay in float64. -> all states [B, T, H], rounded to bfloat16 as the layer returns them."""
    units = recurrent_kernel.shape[0]
    xp = _round_bf16(_round_bf16(np.einsum("bte,ef->btf", _round_bf16(x), _round_bf16(kernel))) + _round_bf16(bias))
    u_z, u_r, u_h = (_round_bf16(recurrent_kernel[:, i * units : (i + 1) * units]) for i in range(3))
    h, outs = np.zeros((x.shape[0], units)), []
    for t in range(x.shape[1]):
        r = 1 / (1 + np.exp(-(xp[:, t, units : 2 * units] + _round_bf16(_round_bf16(h) @ u_r))))
        cand = np.tanh(xp[:, t, 2 * units :] + _round_bf16(_round_bf16(r * h) @ u_h))
        z = 1 / (1 + np.exp(-(xp[:, t, :units] + _round_bf16(_round_bf16(h) @ u_z))))
        h = h + mask[:, t, None] * (z * (cand - h))
        outs.append(h)
    return _round_bf16(np.stack(outs, 1))


def test_mixed_bfloat16_keeps_the_state_in_float32():
    """Under mixed_bfloat16 only the matmuls run in bfloat16: the layer matches a float64 loop that
    rounds each product's operands and result to bfloat16 and nothing else, to within about one
    bfloat16 rounding of the output (rounding h_t and the gates at every step, as an all-bfloat16
    loop does, drifts three times further: 0.012 here)."""
    b, t, e, h = 8, 40, 16, 32
    rng = np.random.default_rng(31)
    x = rng.normal(size=(b, t, e)).astype("float32")
    mask = np.arange(t)[None, :] < rng.integers(1, t + 1, size=b)[:, None]  # [B, T] random lengths
    mask[0] = True
    layer = GRU(h, return_sequences=True, dtype="mixed_bfloat16")
    layer(x)
    weights = [
        (rng.normal(size=w.shape) * scale).astype("float32") for w, scale in zip(layer.weights, (e**-0.5, h**-0.5, 0.5))
    ]
    layer.set_weights(weights)
    got = tf.cast(layer(x, mask=mask), tf.float64).numpy()
    want = _mixed_oracle(x, *(w.astype("float64") for w in weights), mask.astype("float64"))
    want = want * (np.cumsum(mask, 1) > 0)[:, :, None]  # Keras' masked-output rule (left-aligned: no-op)
    err = np.abs(got - want)
    assert err.max() < 4e-3 and err.mean() < 1e-3, (err.max(), err.mean())

    # The gradients through the mixed loop against float32's (the same weights): close in norm.
    ref = GRU(h, return_sequences=True)
    ref(x)
    ref.set_weights(weights)
    cot = rng.normal(size=(b, t, h)).astype("float32")
    grads = []
    for net in (layer, ref):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.cast(net(x, mask=mask), tf.float32) * cot)
        grads.append(tape.gradient(loss, net.trainable_weights))
    for g_mixed, g_ref in zip(*grads):
        assert g_mixed.dtype == tf.float32
        rel = np.linalg.norm(g_mixed.numpy() - g_ref.numpy()) / np.linalg.norm(g_ref.numpy())
        assert rel < 2e-2, rel

"""nmt.model.attention against a NumPy transcription of Bahdanau et al.'s additive attention."""

import keras
import numpy as np

from nmt.model.attention import AdditiveAttention

B, S, Q, D, A = 3, 5, 4, 6, 7
MASK = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [0, 0, 0, 0, 0]], dtype="float32")


def _layer(seed=0):
    layer = AdditiveAttention(A, Q, D)
    layer.build()
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(size=w.shape).astype("float32") for w in layer.weights])
    return layer


def _data(seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(B, Q)).astype("float32"), rng.normal(size=(B, S, D)).astype("float32")


def _numpy_attention(layer, query, values, mask):
    w_a, u_a, v_a = (w.numpy() for w in (layer.query_kernel, layer.key_kernel, layer.score_vector))
    contexts, weights = np.zeros((B, D)), np.zeros((B, S))
    for b in range(B):
        real = [j for j in range(S) if mask[b, j]]
        if not real:
            continue
        e = np.array([v_a @ np.tanh(w_a.T @ query[b] + u_a.T @ values[b, j]) for j in real])
        alpha = np.exp(e - e.max()) / np.exp(e - e.max()).sum()
        weights[b, real] = alpha
        contexts[b] = sum(a * values[b, j] for a, j in zip(alpha, real))
    return contexts, weights


def test_matches_numpy_and_masks_exactly():
    layer = _layer()
    query, values = _data()
    context, weights = layer(query, values, value_mask=MASK)
    ref_context, ref_weights = _numpy_attention(layer, query, values, MASK)
    np.testing.assert_allclose(weights.numpy(), ref_weights, atol=1e-5)
    np.testing.assert_allclose(context.numpy(), ref_context, atol=1e-5)
    w = weights.numpy()
    assert w.dtype == np.float32
    assert np.all(w[MASK == 0] == 0.0)  # exactly zero on padding
    np.testing.assert_allclose(w[:2].sum(-1), 1.0, atol=1e-6)
    assert np.all(context.numpy()[2] == 0.0)  # an all-padding row gives zeros, not NaN


def test_padded_values_change_nothing():
    layer = _layer()
    query, values = _data()
    garbage = values.copy()
    garbage[MASK == 0] = 1e4
    c1, w1 = layer(query, values, value_mask=MASK)
    c2, w2 = layer(query, garbage, value_mask=MASK)
    np.testing.assert_array_equal(w1.numpy(), w2.numpy())
    np.testing.assert_array_equal(c1.numpy(), c2.numpy())


def test_bool_mask_and_no_mask():
    layer = _layer()
    query, values = _data()
    c_float, _ = layer(query, values, value_mask=MASK)
    c_bool, _ = layer(query, values, value_mask=MASK.astype(bool))
    np.testing.assert_array_equal(c_float.numpy(), c_bool.numpy())
    _, w_all = layer(query, values)
    np.testing.assert_allclose(w_all.numpy().sum(-1), 1.0, atol=1e-6)


def test_config_round_trip():
    layer = _layer()
    clone = AdditiveAttention.from_config(layer.get_config())
    clone.build()
    assert [w.shape for w in clone.weights] == [(Q, A), (D, A), (A,)]
    clone.set_weights(layer.get_weights())
    query, values = _data()
    np.testing.assert_array_equal(
        clone(query, values, value_mask=MASK)[0].numpy(),
        layer(query, values, value_mask=MASK)[0].numpy(),
    )
    assert keras.saving.get_registered_object("nmt>AdditiveAttention") is AdditiveAttention

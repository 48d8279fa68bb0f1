"""The precision a trained model decodes in (nmt.model.precision): which policy for which model and CPU,
and the copy with bfloat16 variables against the mixed_bfloat16 model it is made from (its weights are
the model's rounded to bfloat16; its decoding steps give the model's log-probabilities)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from nmt.model.precision import decoding_policy, with_policy
from nmt.model.seq2seq import ModelConfig, build_model

SRC_V, TGT_V = 60, 70


def model_under(policy: str, **options):
    saved = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        keras.utils.set_random_seed(3)
        cfg = ModelConfig(
            embedding_dim=16, encoder_units=24, decoder_units=32, attention_units=16, output_dim=24, **options
        )
        return build_model(cfg, SRC_V, TGT_V)
    finally:
        keras.mixed_precision.set_global_policy(saved)


def test_which_policy_for_which_model_and_cpu():
    mixed, full = model_under("mixed_bfloat16"), model_under("float32")
    assert decoding_policy(mixed, cpu_flags=["avx512_bf16"], gpus=0) == "bfloat16"
    assert decoding_policy(mixed, cpu_flags=["amx_bf16"], gpus=0) == "bfloat16"
    assert decoding_policy(mixed, cpu_flags=[], gpus=0) == "float32"  # emulated bfloat16 is slower
    assert decoding_policy(mixed, cpu_flags=None, gpus=0) == "float32"  # unknown CPU
    assert decoding_policy(mixed, cpu_flags=[], gpus=1) == "bfloat16"
    assert decoding_policy(full, cpu_flags=["avx512_bf16"], gpus=0) is None  # decoded as trained


@pytest.mark.parametrize(
    "options",
    [
        dict(architecture="attention", attention_position="luong", attention_score="scaled_dot", residual_norm=True),
        dict(architecture="attention"),  # Bahdanau et al.'s model
        dict(architecture="cho2014", deep_output="maxout"),
    ],
    ids=["fast recipe", "bahdanau", "cho2014"],
)
@pytest.mark.parametrize("policy", ["bfloat16", "float32"])
def test_the_copy_decodes_as_the_mixed_model(options, policy):
    model = model_under("mixed_bfloat16", **options)
    copy = with_policy(model, policy)
    assert [w.path for w in copy.weights] == [w.path for w in model.weights]
    for mine, theirs in zip(copy.weights, model.weights):
        assert mine.dtype == policy
        want = tf.cast(tf.cast(theirs.value, policy), "float32").numpy()
        np.testing.assert_array_equal(tf.cast(mine.value, "float32").numpy(), want)
    rng = np.random.default_rng(0)
    source = rng.integers(4, SRC_V, size=(5, 9)).astype("int32")
    source[3, 6:] = 0  # padding
    tokens = rng.integers(4, TGT_V, size=(5, 6)).astype("int32")
    states = [m.encode(tf.constant(source)) for m in (model, copy)]
    for t in range(tokens.shape[1]):
        steps = [m.decode_step(tf.constant(tokens[:, t]), s) for m, s in zip((model, copy), states)]
        (lp_model, state_model, _), (lp_copy, state_copy, _) = steps
        assert lp_copy.dtype == tf.float32
        # the same products in bfloat16 (or exact ones in float32): log-probabilities within bfloat16's rounding
        np.testing.assert_allclose(lp_copy.numpy(), lp_model.numpy(), atol=0.08)
        assert np.mean(np.argmax(lp_copy, -1) == np.argmax(lp_model, -1)) >= 0.8
        states = [state_model, state_copy]

"""Attention after the recurrence (`model.attention_position: luong`, Luong et al. 2015).

The decoder GRU (`nmt.model.gru.GRU`, the equations of docs/DESIGN.md) reads only the previous target word,
so in training it runs over the whole target sequence as one sequence op, exactly like the
encoder; attention over its outputs is then computed for all target positions at once:

    h_t = GRU(e(y_{t-1}), h_{t-1})                        [B, T, H]   h_0 from `decoder_init`
    c_t, α_t = attention(h_t, h_1..h_S)                   [B, T, C], [B, T, S]   (`nmt.model.attention`)
    o_t = LayerNorm(h_t + c_t·W_o + b_o)                  [B, T, H]   residual_norm: true
     or   tanh([c_t; h_t]·W_c)                            [B, T, H]   residual_norm: false (Luong's h̃_t)
    logits_t = dropout(o_t)·W_v + b_v                     [B, T, V]   deep_output: none
     or the deep output of `nmt.model.decoder` on (o_t, e(y_{t-1}), c_t)    deep_output: maxout | tanh

Nothing of the attention is inside the recurrence, so training no longer pays for it step by
step. Decoding runs the same equations one step at a time: the GRU cell's step, then `attend_all`
with T = 1. This is the recipe of the TensorFlow "NMT with attention" tutorial (one-head
scaled dot-product attention, residual + LayerNorm), written on this project's GRU and search.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from nmt.model.attention import AdditiveAttention
from nmt.model.decoder import Decoder, initial_decoder_state
from nmt.model.gru import GRU

LAYER_NORM_EPSILON = 1e-5


@keras.saving.register_keras_serializable(package="nmt")
class LuongDecoder(Decoder):
    """Decoder GRU first, attention over its outputs after; see the module docstring.

    Extra sizes: attention_units A (query/key projection size), encoder_state_dim (one encoder
    direction's final state, what `decoder_init` reads).
    """

    def __init__(
        self,
        *args,
        attention_units=512,
        attention_score="scaled_dot",
        residual_norm=True,
        decoder_init="zeros",
        encoder_state_dim=None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.attention_units = int(attention_units)
        self.attention_score = str(attention_score)
        self.residual_norm = bool(residual_norm)
        self.decoder_init = str(decoder_init)
        self.encoder_state_dim = int(encoder_state_dim or self.encoder_dim)
        policy = self.dtype_policy
        self.gru = GRU(self.units, return_sequences=True, dtype=policy, name="gru")
        self.attention = AdditiveAttention(
            self.attention_units,
            self.units,
            self.encoder_dim,
            score=self.attention_score,
            dtype=policy,
            name="attention",
        )
        if self.residual_norm:
            self.combine = keras.layers.Dense(self.units, dtype=policy, name="attention_output")
            self.norm = keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, dtype=policy, name="layer_norm")
        else:
            self.combine = keras.layers.Dense(
                self.units, activation="tanh", use_bias=False, dtype=policy, name="combine"
            )
        if self.decoder_init == "projection":
            self.bridge = keras.layers.Dense(self.units, activation="tanh", use_bias=False, dtype=policy, name="bridge")

    @property
    def context_dim(self):
        return self.encoder_dim

    def _build_recurrence(self):
        self.gru.build((None, None, self.embedding_dim))
        self.attention.build()
        if self.residual_norm:
            self.combine.build((None, self.encoder_dim))
            self.norm.build((None, self.units))
        else:
            self.combine.build((None, self.encoder_dim + self.units))
        if self.decoder_init == "projection":
            self.bridge.build((None, self.encoder_state_dim))

    def start(self, encoder_outputs, final_states, source_mask):
        """encoder_outputs [B, S, C], final_states (→h_N, ←h_1) each [B, encoder_state_dim],
        source_mask bool [B, S] -> state {"memory": {...}, "recurrent": {"hidden"}}."""
        values = ops.cast(encoder_outputs, self.compute_dtype)
        hidden = initial_decoder_state(self, final_states[-1], tf.shape(values)[0])
        return {
            "memory": {
                "encoder_outputs": values,  # h_j: [B, S, C]
                "keys": self.attention.project_keys(values),  # U_a·h_j: [B, S, A]
                "source_mask": tf.cast(source_mask, tf.float32),  # [B, S]
            },
            "recurrent": {"hidden": hidden},  # h_0: [B, H]
        }

    def _attend_and_read(self, hidden, embedded, memory, training, restricted=None):
        """hidden h_t [B, T, H], embedded e(y_{t-1}) [B, T, E] -> (logits float32 [B, T, V] (restricted: V' ids,
        `Decoder.project`), attention float32 [B, T, S])."""
        context, attention = self.attention.attend_all(
            hidden, memory["keys"], memory["encoder_outputs"], memory["source_mask"]
        )  # [B, T, C], [B, T, S]
        if self.residual_norm:
            output = self.norm(hidden + self.combine(context))  # [B, T, H]
        else:
            output = self.combine(tf.concat([context, hidden], axis=-1))  # [B, T, H]
        output = ops.cast(output, self.compute_dtype)
        if self.deep_output == "none":
            return self.project(output, training, restricted), attention
        return self.readout(output, embedded, self.readout_context(context), training, restricted), attention

    def call(self, target_in, state, training=None):
        """target_in int [B, T] (BOS first, 0-padded), state from `start` -> logits float32 [B, T, V]."""
        embedded = self.embed(target_in, training)  # [B, T, E]
        hidden = self.gru(embedded, initial_state=state["recurrent"]["hidden"], training=training)  # [B, T, H]
        return self._attend_and_read(hidden, embedded, state["memory"], training)[0]

    def step(self, tokens, state):
        """tokens int [B], state -> (logits float32 [B, V], new state, attention float32 [B, S]); with
        state["output"] (`output_weights`), logits of those V' ids: [B, V']."""
        memory = state["memory"]
        embedded = self.embed(tokens)  # [B, E]
        cell = self.gru.cell
        hidden = cell.step(cell.input_projection(embedded), state["recurrent"]["hidden"])  # [B, H]
        logits, attention = self._attend_and_read(
            hidden[:, None], embedded[:, None], memory, None, restricted=state.get("output")
        )
        return logits[:, 0], {"memory": memory, "recurrent": {"hidden": hidden}}, attention[:, 0]

    def get_config(self):
        config = super().get_config()
        config.update(
            attention_units=self.attention_units,
            attention_score=self.attention_score,
            residual_norm=self.residual_norm,
            decoder_init=self.decoder_init,
            encoder_state_dim=self.encoder_state_dim,
        )
        return config

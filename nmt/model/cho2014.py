"""The decoder of Cho et al. 2014 ("Learning Phrase Representations using RNN Encoder–Decoder
for Statistical Machine Translation", appendix A).

    c     = tanh(V·h_N)                                   [B, C]   summary of the source (C = encoder_dim)
    h'_0  = tanh(V'·c)                                    [B, H]
    h'_t  = GRU(e(y_{t-1}), h'_{t-1}, context=c)          [B, H]   c enters every gate at every step
    logits_t = deep output of (h'_t, e(y_{t-1}), c)       [B, V]   (`nmt.model.decoder`)

The GRU is `nmt.model.gru`'s: the reset gate multiplies h'_{t-1} before the matmul and c enters
the gates as an input, h̃ = tanh(W·e + U·(r ⊙ h') + C·c). The paper's appendix writes the
decoder candidate as tanh(W·e + r ⊙ (U·h' + C·c)), the reset gate after the product and over the
context too; this project keeps the one GRU for encoder and decoder.

Teacher forcing runs the GRU layer over the whole target (c·C and O_c·c computed once per
sentence); decoding runs the cell's step with the same weights.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from nmt.model.decoder import Decoder
from nmt.model.gru import GRU


@keras.saving.register_keras_serializable(package="nmt")
class Cho2014Decoder(Decoder):
    """Cho et al. 2014, appendix A: summary c = tanh(V·h_N) [B, C] (C = encoder_dim), initial state
    h'_0 = tanh(V'·c), a GRU reading e(y_{t-1}) with c entering every gate at every step, and the
    deep output with O_c·c computed once per sentence.
    """

    @property
    def context_dim(self):
        return self.encoder_dim

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        policy = self.dtype_policy
        self.summary = keras.layers.Dense(
            self.context_dim, activation="tanh", use_bias=False, dtype=policy, name="summary"
        )
        self.bridge = keras.layers.Dense(self.units, activation="tanh", use_bias=False, dtype=policy, name="bridge")
        self.gru = GRU(self.units, return_sequences=True, dtype=policy, name="gru")

    def _build_recurrence(self):
        self.summary.build((None, self.encoder_dim))
        self.bridge.build((None, self.context_dim))
        self.gru.build((None, None, self.embedding_dim), context_shape=(None, self.context_dim))

    def start(self, encoder_outputs, final_states, source_mask):
        """encoder_outputs [B, S, encoder_dim] (unused), final_states (h_N [B, encoder_dim],),
        source_mask bool [B, S] -> state {"memory": {...}, "recurrent": {"hidden"}}."""
        context = self.summary(final_states[0])  # c: [B, C]
        return {
            "memory": {
                "context": context,  # [B, C]
                "context_gates": self.gru.cell.context_projection(context),  # c·C_[z,r,h]: [B, 3H]
                "context_readout": self.readout_context(context),  # O_c·c: [B, D]
                "source_mask": tf.cast(source_mask, tf.float32),  # [B, S]
            },
            "recurrent": {"hidden": self.bridge(context)},  # h'_0: [B, H]
        }

    def call(self, target_in, state, training=None):
        """target_in int [B, T] (BOS first, 0-padded), state from `start`
        -> logits float32 [B, T, V]."""
        memory = state["memory"]
        embedded = self.embed(target_in, training)  # [B, T, E]
        hidden = self.gru(
            embedded,
            initial_state=state["recurrent"]["hidden"],
            context=memory["context"],
            training=training,
        )  # [B, T, H]
        return self.readout(hidden, embedded, memory["context_readout"][:, None, :], training)

    def step(self, tokens, state):
        """tokens int [B], state -> (logits float32 [B, V], new state, None); with state["output"]
        (`output_weights`), logits of those V' ids: [B, V']."""
        memory = state["memory"]
        embedded = self.embed(tokens)  # [B, E]
        cell = self.gru.cell
        projected = cell.input_projection(embedded) + memory["context_gates"]  # [B, 3H]
        hidden = cell.step(projected, state["recurrent"]["hidden"])  # [B, H]
        logits = self.readout(hidden, embedded, memory["context_readout"], output=state.get("output"))
        return logits, {"memory": memory, "recurrent": {"hidden": hidden}}, None

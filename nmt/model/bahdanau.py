"""The attention decoder of Bahdanau et al. 2015 ("Neural Machine Translation by Jointly Learning
to Align and Translate"): attention inside the recurrence.

    s_0  = tanh(W_s·←h_1)                                  [B, H]   (or `decoder_init`)
    c_i, α_i = attention(s_{i-1}, h_1..h_S)                [B, C], [B, S]   (`nmt.model.attention`)
    s_i  = GRU(s_{i-1}, [e(y_{i-1}), c_i])                 [B, H]   c_i entering every gate
    logits_i = deep output of (s_i, e(y_{i-1}), c_i)       [B, V]   (`nmt.model.decoder`)

c_i depends on s_{i-1}, so attention runs inside the time loop, one step at a time
(`attention_gru_step`, the same function in training and in decoding). Training runs it in a
tf.while_loop with a hand-written backward pass (`attention_gru_recurrence`); the readout over all
steps is done after the loop. The GRU equations are `nmt.model.gru`'s `gru_step` and
`gru_step_backward`, written once there.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from nmt.model.attention import AdditiveAttention, additive_attention
from nmt.model.decoder import Decoder, initial_decoder_state
from nmt.model.gru import GRUCell, gru_step, gru_step_backward, matmul_weights, state_dtype


def attention_gru_step(projected, hidden, memory, weights):
    """One step of Bahdanau's decoder on the GRU equations of `nmt.model.gru`.

    projected [B, 3H]: x·W + b of the previous target word; hidden s_{i-1} [B, H]; memory: keys
    [B, S, A], encoder_outputs [B, S, C], source_mask [B, S]; weights: hidden_kernel [W_a | U_zr]
    [H, A + 2H], context_kernel C [C, 3H], candidate_kernel U_h [H, H], score_vector v_a [A].

    Precision: hidden, projected, keys and v_a are in the state dtype (float32 under mixed
    precision, as in `nmt.model.gru`), encoder_outputs and the three kernels in the compute dtype;
    every element-wise operation (gates, attention scores, softmax) runs in the state dtype and only
    the matmuls in the weights' precision (`matmul_weights`), so the state is not rounded to
    bfloat16 at every step.

        [q, ρ_z, ρ_r] = s_{i-1}·[W_a | U_z | U_r]   the attention query and the recurrent z, r terms
        c_i, α_i = attention(q)                      `nmt.model.attention.additive_attention`
        a = projected + c_i·C                        [B, 3H], gate blocks [z, r, h]
        s_i = `nmt.model.gru.gru_step`(a_z + ρ_z, a_r + ρ_r, a_h, s_{i-1})

    The same function as `cell.step(projected + cell.context_projection(c_i), s_{i-1})`, with the
    query and the z, r terms sharing one matmul. Returns (s_i [B, H], c_i [B, C] in the
    encoder_outputs' dtype, α_i float32 [B, S], q [B, A], z [B, H], r [B, H], s̃ [B, H]); the
    last four are kept for the backward pass.
    """
    units = hidden.shape[-1]
    attention_units = weights["hidden_kernel"].shape[-1] - 2 * units
    hq = matmul_weights(hidden, weights["hidden_kernel"])  # [B, A + 2H]
    query, recurrent_z, recurrent_r = tf.split(hq, [attention_units, units, units], axis=1)
    context, attention = additive_attention(
        query,
        memory["keys"],
        memory["encoder_outputs"],
        memory["source_mask"],
        weights["score_vector"],
    )  # [B, C], [B, S]
    a = projected + tf.cast(tf.matmul(context, weights["context_kernel"]), projected.dtype)  # [B, 3H]
    a_z, a_r, a_h = tf.split(a, 3, axis=1)  # [B, H] each
    new_hidden, z, r, candidate, _ = gru_step(
        a_z + recurrent_z, a_r + recurrent_r, a_h, hidden, hidden, weights["candidate_kernel"]
    )
    return new_hidden, context, attention, query, z, r, candidate


def attention_gru_recurrence(projected, h0, memory, weights):
    """The teacher-forced attention decoder over all steps, with a hand-written backward pass.

    projected [T, B, 3H] (target input projections), h0 s_0 [B, H], memory and weights as in
    `attention_gru_step` -> (states s_1..s_T [T, B, H], contexts c_1..c_T [T, B, C]).

    The forward loop runs `attention_gru_step` and keeps q, α, z, r, s̃ per step; the backward
    loop runs `nmt.model.gru.gru_step_backward` and the attention's backward, carries only d s, and
    the weight gradients (d[W_a | U_zr], dC, dU_h) are one large matmul each after it, over all
    B·T rows, instead of T small ones inside the loop.

    Under mixed precision (bfloat16 kernels) the states, the gates, the attention scores and all
    their gradients are float32 and only the matmuls run in bfloat16, as in `attention_gru_step`:
    states come back in float32, contexts in the encoder outputs' dtype.
    """
    w_hq, w_c = weights["hidden_kernel"], weights["context_kernel"]
    u_h = weights["candidate_kernel"]
    dtype = state_dtype(w_hq.dtype)  # the state and the element-wise arithmetic
    projected, h0 = tf.cast(projected, dtype), tf.cast(h0, dtype)
    keys, values = tf.cast(memory["keys"], dtype), memory["encoder_outputs"]
    v = tf.cast(weights["score_vector"], dtype)
    mask = tf.cast(memory["source_mask"], tf.float32)
    units = h0.shape[-1]
    attention_units = keys.shape[-1]
    steps = tf.shape(projected)[0]

    @tf.custom_gradient
    def run(projected, h0, keys, values, w_hq, w_c, u_h, v):
        mem = {"keys": keys, "encoder_outputs": values, "source_mask": mask}
        wts = {
            "hidden_kernel": w_hq,
            "context_kernel": w_c,
            "candidate_kernel": u_h,
            "score_vector": v,
        }

        def ta(element_dtype=dtype):
            return tf.TensorArray(element_dtype, size=steps)

        def rows(x, row_dtype=w_hq.dtype):  # [T, B, N] -> [T·B, N], a weight-gradient matmul operand
            return tf.cast(tf.reshape(x, [-1, x.shape[-1]]), row_dtype)

        def body(t, hidden, *arrays):
            hidden, *kept = attention_gru_step(projected[t], hidden, mem, wts)  # s_i; c_i, α_i, q, z, r, s̃
            return (t + 1, hidden, arrays[0].write(t, hidden)) + tuple(a.write(t, x) for a, x in zip(arrays[1:], kept))

        loop = tf.while_loop(
            lambda t, *_: t < steps,
            body,
            (0, h0, ta(), ta(values.dtype), ta(tf.float32), ta(), ta(), ta(), ta()),
            maximum_iterations=steps,
        )
        states, contexts, alphas, queries, zs, rs, cands = (x.stack() for x in loop[2:])  # [T, B, ...]

        def grad(d_states, d_contexts):
            d_states = tf.zeros_like(states) if d_states is None else tf.cast(d_states, dtype)
            d_contexts = tf.zeros_like(contexts, dtype) if d_contexts is None else tf.cast(d_contexts, dtype)
            h_prev = tf.concat([h0[None], states[:-1]], axis=0)  # [T, B, H]
            u_h_t, w_c_t, w_hq_t = tf.transpose(u_h), tf.transpose(w_c), tf.transpose(w_hq)

            def back(t, dh, d_keys, d_v, d_hqs, d_as, d_cs):
                dh = dh + d_states[t]
                h, alpha = h_prev[t], alphas[t]
                d_z, d_r, d_ah, _, d_h, d_hd = gru_step_backward(dh, h, h, zs[t], rs[t], cands[t], u_h_t)
                d_a = tf.concat([d_z, d_r, d_ah], axis=1)  # pre-activations of the gates: [B, 3H]
                d_c = d_contexts[t] + matmul_weights(d_a, w_c_t)  # [B, C]
                d_alpha = tf.matmul(values, tf.cast(d_c, values.dtype)[:, :, None])[:, :, 0]
                d_alpha = tf.cast(d_alpha, tf.float32)  # [B, S]
                d_e = alpha * (d_alpha - tf.reduce_sum(alpha * d_alpha, -1, keepdims=True))
                d_e = tf.cast(d_e, dtype)  # scores: [B, S]
                th = tf.tanh(keys + queries[t][:, None, :])  # recomputed: [B, S, A]
                d_v = (
                    d_v
                    + tf.matmul(
                        tf.reshape(th, [-1, attention_units]),
                        tf.reshape(d_e, [-1, 1]),
                        transpose_a=True,
                    )[:, 0]
                )  # Σ_bs d_e·th
                d_pre = d_e[:, :, None] * v * (1 - th * th)  # [B, S, A]
                d_hq = tf.concat([tf.reduce_sum(d_pre, axis=1), d_z, d_r], axis=1)  # [B, A + 2H]
                dh_prev = d_h + d_hd + matmul_weights(d_hq, w_hq_t)
                return (
                    t - 1,
                    dh_prev,
                    d_keys + d_pre,
                    d_v,
                    d_hqs.write(t, d_hq),
                    d_as.write(t, d_a),
                    d_cs.write(t, d_c),
                )

            _, dh0, d_keys, d_v, d_hqs, d_as, d_cs = tf.while_loop(
                lambda t, *_: t >= 0,
                back,
                (steps - 1, tf.zeros_like(h0), tf.zeros_like(keys), tf.zeros_like(v)) + (ta(), ta(), ta()),
                maximum_iterations=steps,
            )
            d_hq, d_a, d_c = d_hqs.stack(), d_as.stack(), d_cs.stack()

            # the weight gradients as one [N, T·B] x [T·B, M] product each, in the weights' precision
            d_w_hq = tf.matmul(rows(h_prev), rows(d_hq), transpose_a=True)  # [H, A + 2H]
            d_w_c = tf.matmul(rows(contexts), rows(d_a), transpose_a=True)  # [C, 3H]
            rh = rs * h_prev  # r ⊙ s_{i-1}: [T, B, H]
            d_u_h = tf.matmul(rows(rh), rows(d_a[:, :, 2 * units :]), transpose_a=True)
            d_values = tf.einsum(  # Σ_t α_t,bs · dc_t,bc
                "tbs,tbc->bsc", tf.cast(alphas, values.dtype), tf.cast(d_c, values.dtype)
            )
            return d_a, dh0, d_keys, d_values, d_w_hq, d_w_c, d_u_h, d_v

        return (states, contexts), grad

    return run(projected, h0, keys, values, w_hq, w_c, u_h, v)


@keras.saving.register_keras_serializable(package="nmt")
class AttentionDecoder(Decoder):
    """Bahdanau et al. 2015: s_0 = tanh(W_s·←h_1) from the backward encoder's state after reading
    the whole sentence; at step i the attention reads s_{i-1} and gives c_i [B, C] (C =
    encoder_dim), then s_i = GRU(s_{i-1}, [e(y_{i-1}), c_i]), c_i entering every gate; readout
    from (s_i, e(y_{i-1}), c_i).

    Teacher forcing: the target half of the GRU input projection for all steps is one matmul; a
    tf.while_loop runs `attention_gru_step` (attention + one GRU step) and keeps s_i and c_i (and
    what its hand-written gradient needs); the readout over all steps is done after the loop.
    `step` runs the same `attention_gru_step` once.
    """

    def __init__(self, *args, attention_units=512, decoder_init="projection", encoder_state_dim=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.attention_units = int(attention_units)
        self.decoder_init = str(decoder_init)
        self.encoder_state_dim = int(encoder_state_dim or self.encoder_dim // 2)
        policy = self.dtype_policy
        if self.decoder_init == "projection":
            self.bridge = keras.layers.Dense(self.units, activation="tanh", use_bias=False, dtype=policy, name="bridge")
        self.attention = AdditiveAttention(
            self.attention_units, self.units, self.context_dim, dtype=policy, name="attention"
        )
        self.cell = GRUCell(self.units, dtype=policy, name="gru_cell")

    @property
    def context_dim(self):
        return self.encoder_dim

    def _build_recurrence(self):
        if self.decoder_init == "projection":
            self.bridge.build((None, self.encoder_state_dim))
        self.attention.build()
        self.cell.build((None, self.embedding_dim), (None, self.context_dim))

    def start(self, encoder_outputs, final_states, source_mask):
        """encoder_outputs [B, S, C], final_states (→h_N, ←h_1) each [B, C/2], source_mask bool
        [B, S] -> state {"memory": {...}, "recurrent": {"hidden"}}."""
        values = ops.cast(encoder_outputs, self.compute_dtype)
        hidden_dtype = state_dtype(self.compute_dtype)  # float32 under mixed precision
        s_0 = initial_decoder_state(self, final_states[-1], tf.shape(values)[0])
        return {
            "memory": {
                "encoder_outputs": values,  # h_j: [B, S, C]
                "keys": tf.cast(self.attention.project_keys(values), hidden_dtype),  # U_a·h_j: [B, S, A]
                "source_mask": tf.cast(source_mask, tf.float32),  # [B, S]
            },
            "recurrent": {"hidden": tf.cast(s_0, hidden_dtype)},  # s_0: [B, H]
        }

    def _step_weights(self):
        """The weights one step uses, arranged once per sequence (outside the loop): the kernels in
        the compute dtype, v_a in the state dtype (it scales float32 scores under mixed precision)."""
        cell = self.cell
        dtype = self.compute_dtype
        u = ops.cast(cell.recurrent_kernel, dtype)
        u_zr, u_h = tf.split(u, [2 * self.units, self.units], axis=1)
        query_kernel = ops.cast(self.attention.query_kernel, dtype)
        return {
            "hidden_kernel": tf.concat([query_kernel, u_zr], axis=1),  # [W_a | U_zr] [H, A + 2H]
            "context_kernel": ops.cast(cell.context_kernel, dtype),  # C: [C, 3H]
            "candidate_kernel": u_h,  # U_h: [H, H]
            "score_vector": ops.cast(self.attention.score_vector, state_dtype(dtype)),  # v_a: [A]
        }

    def _advance(self, projected, hidden, memory, weights):
        """One decoder step: projected [B, 3H] (target input projection x·W + b), hidden s_{i-1}
        [B, H], weights from `_step_weights` -> (s_i [B, H], c_i [B, C], attention float32 [B, S])."""
        return attention_gru_step(projected, hidden, memory, weights)[:3]

    def call(self, target_in, state, training=None):
        """target_in int [B, T] (BOS first, 0-padded), state from `start`
        -> logits float32 [B, T, V]."""
        memory = state["memory"]
        hidden = ops.cast(state["recurrent"]["hidden"], state_dtype(self.compute_dtype))
        embedded = self.embed(target_in, training)  # [B, T, E]
        projected = self.cell.input_projection(tf.transpose(embedded, [1, 0, 2]))  # [T, B, 3H]
        projected = ops.cast(projected, hidden.dtype)  # the state dtype: float32 under mixed precision
        states, contexts = attention_gru_recurrence(projected, hidden, memory, self._step_weights())
        hidden_seq = tf.transpose(states, [1, 0, 2])  # [B, T, H]
        context_seq = tf.transpose(contexts, [1, 0, 2])  # [B, T, C]
        return self.readout(hidden_seq, embedded, self.readout_context(context_seq), training)

    def step(self, tokens, state):
        """tokens int [B], state -> (logits float32 [B, V], new state, attention float32 [B, S]); with
        state["output"] (`output_weights`), logits of those V' ids: [B, V']."""
        memory = state["memory"]
        embedded = self.embed(tokens)  # [B, E]
        hidden_dtype = state_dtype(self.compute_dtype)  # float32 under mixed precision
        projected = ops.cast(self.cell.input_projection(embedded), hidden_dtype)  # [B, 3H]
        hidden = ops.cast(state["recurrent"]["hidden"], hidden_dtype)
        hidden, context, attention = self._advance(projected, hidden, memory, self._step_weights())
        logits = self.readout(hidden, embedded, self.readout_context(context), output=state.get("output"))
        return logits, {"memory": memory, "recurrent": {"hidden": hidden}}, attention

    def get_config(self):
        config = super().get_config()
        config.update(
            attention_units=self.attention_units,
            decoder_init=self.decoder_init,
            encoder_state_dim=self.encoder_state_dim,
        )
        return config

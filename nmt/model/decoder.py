"""The target side of the two architectures: Cho et al. 2014 and Bahdanau et al. 2015.

Both decoders share the deep output ("readout") of the papers, for target position t with
previous word y_{t-1}, new decoder state h_t and context c_t:

    s_t = O_h·h_t + O_y·e(y_{t-1}) + O_c·c_t + b            [..., D]
    maxout: u_t = max(s_t[:D/2], s_t[D/2:])                 [..., D/2]   ("maxout", D even)
    or      u_t = tanh(s_t)                                  [..., D]     ("tanh", simpler)
    logits_t = dropout(u_t)·W_o + b_o                        [..., V]     (W_o = E_tgtᵀ, tied)

Maxout pairs unit i with unit i + D/2 rather than 2i with 2i + 1: the same model up to a
permutation of O's columns, and two contiguous slices are cheaper than strided ones. The paper
(Bahdanau appendix A.2.2) writes U_o·s_{i-1}; we follow its section 3.1, g(y_{i-1}, s_i, c_i), and
Cho et al. 2014, and read out the new state.

State dictionaries (see `nmt.model.seq2seq`): every leaf is batch-major; "memory" is constant per sentence,
"recurrent" = {"hidden": [B, units]} is what a step changes.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from nmt.model.attention import AdditiveAttention, additive_attention
from nmt.model.gru import GRU, GRUCell, _state_dtype, gru_update, gru_update_backward, matmul_weights


class _Decoder(keras.layers.Layer):
    """Target embedding, deep output and vocabulary projection, shared by both decoders.

    Sizes: vocab_size V, embedding_dim E, units H (decoder GRU), context_dim C (what the readout's
    O_c reads), output_dim D (before maxout), encoder_dim (the encoder's output size).
    """

    def __init__(
        self,
        vocab_size,
        embedding_dim,
        units,
        encoder_dim,
        output_dim,
        deep_output="maxout",
        embedding_dropout=0.0,
        output_dropout=0.0,
        tie_embeddings=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size = int(vocab_size)
        self.embedding_dim = int(embedding_dim)
        self.units = int(units)
        self.encoder_dim = int(encoder_dim)
        self.output_dim = int(output_dim)
        self.deep_output = str(deep_output)
        self.embedding_dropout = float(embedding_dropout)
        self.output_dropout = float(output_dropout)
        self.tie_embeddings = bool(tie_embeddings)
        if self.readout_dim != self.embedding_dim and self.tie_embeddings:
            raise ValueError(
                f"tied embeddings need readout size {self.readout_dim} == embedding_dim {self.embedding_dim}"
            )
        policy = self.dtype_policy
        self.embedding = keras.layers.Embedding(self.vocab_size, self.embedding_dim, dtype=policy, name="embedding")
        self.embedding_drop = keras.layers.Dropout(self.embedding_dropout, name="embedding_dropout")
        if self.deep_output != "none":
            self.readout_state = keras.layers.Dense(self.output_dim, dtype=policy, name="readout_state")
            self.readout_embedding = keras.layers.Dense(
                self.output_dim, use_bias=False, dtype=policy, name="readout_embedding"
            )
            self.readout_context = keras.layers.Dense(
                self.output_dim, use_bias=False, dtype=policy, name="readout_context"
            )
        self.output_drop = keras.layers.Dropout(self.output_dropout, name="output_dropout")
        if not self.tie_embeddings:
            self.projection = keras.layers.Dense(self.vocab_size, dtype=policy, name="projection")

    @property
    def readout_dim(self):
        """Size after maxout/tanh, what the vocabulary projection reads (the decoder state's size
        without a deep output)."""
        if self.deep_output == "none":
            return self.units
        return self.output_dim // 2 if self.deep_output == "maxout" else self.output_dim

    @property
    def context_dim(self):
        raise NotImplementedError

    def build(self, input_shape=None):
        self.embedding.build()
        if self.deep_output != "none":
            self.readout_state.build((None, self.units))
            self.readout_embedding.build((None, self.embedding_dim))
            self.readout_context.build((None, self.context_dim))
        if self.tie_embeddings:
            self.projection_bias = self.add_weight(
                name="projection_bias", shape=(self.vocab_size,), initializer="zeros"
            )
        else:
            self.projection.build((None, self.readout_dim))
        self._build_recurrence()
        self.built = True

    def _build_recurrence(self):
        raise NotImplementedError

    def embed(self, tokens, training=None):
        """tokens int [...] -> embeddings [..., E] (dropout when training)."""
        return self.embedding_drop(self.embedding(tf.cast(tokens, tf.int32)), training=training)

    def readout(self, hidden, embedded, context_term, training=None):
        """hidden [..., H], embedded [..., E], context_term O_c·c [..., D]
        -> logits float32 [..., V]."""
        s = self.readout_state(hidden) + self.readout_embedding(embedded) + context_term
        if self.deep_output == "maxout":
            u = tf.maximum(*tf.split(s, 2, axis=-1))  # [..., D/2]
        else:
            u = tf.tanh(s)  # [..., D]
        return self.project(u, training)

    def project(self, u, training=None):
        """u [..., readout_dim] -> logits float32 [..., V] (dropout when training)."""
        u = self.output_drop(u, training=training)
        if self.tie_embeddings:
            table = ops.cast(self.embedding.embeddings, self.compute_dtype)  # [V, E]
            logits = tf.tensordot(u, table, [[-1], [1]]) + ops.cast(self.projection_bias, self.compute_dtype)
        else:
            logits = self.projection(u)  # [..., V]
        return tf.cast(logits, tf.float32)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            embedding_dim=self.embedding_dim,
            units=self.units,
            encoder_dim=self.encoder_dim,
            output_dim=self.output_dim,
            deep_output=self.deep_output,
            embedding_dropout=self.embedding_dropout,
            output_dropout=self.output_dropout,
            tie_embeddings=self.tie_embeddings,
        )
        return config


@keras.saving.register_keras_serializable(package="nmt")
class Cho2014Decoder(_Decoder):
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
        """tokens int [B], state -> (logits float32 [B, V], new state, None)."""
        memory = state["memory"]
        embedded = self.embed(tokens)  # [B, E]
        cell = self.gru.cell
        projected = cell.input_projection(embedded) + memory["context_gates"]  # [B, 3H]
        hidden = cell.step(projected, state["recurrent"]["hidden"])  # [B, H]
        logits = self.readout(hidden, embedded, memory["context_readout"])
        return logits, {"memory": memory, "recurrent": {"hidden": hidden}}, None


def initial_decoder_state(decoder, backward_state, batch):
    """The attention decoders' first state from the backward encoder's state ←h_1 [B, units]:
    "projection" tanh(←h_1·W_s) (Bahdanau et al.; `decoder.bridge`), "backward" ←h_1 itself (its
    size must equal the decoder's), "zeros" a zero state -> [B, H] in the compute dtype."""
    dtype = decoder.compute_dtype
    if decoder.decoder_init == "projection":
        return ops.cast(decoder.bridge(backward_state), dtype)
    if decoder.decoder_init == "backward":
        return ops.cast(backward_state, dtype)
    return tf.zeros([batch, decoder.units], dtype)


def attention_gru_step(projected, hidden, memory, weights):
    """One step of Bahdanau's decoder on the GRU equations of `nmt.model.gru`.

    projected [B, 3H]: x·W + b of the previous target word; hidden s_{i-1} [B, H]; memory: keys
    [B, S, A], encoder_outputs [B, S, C], source_mask [B, S]; weights: hidden_kernel [W_a | U_zr]
    [H, A + 2H], context_kernel C [C, 3H], candidate_kernel U_h [H, H], score_vector v_a [A].

    Precision: hidden, projected, keys and v_a are in the state dtype (float32 under mixed
    precision, as in `nmt.model.gru`), encoder_outputs and the three kernels in the compute dtype; every
    element-wise operation (gates, attention scores, softmax) runs in the state dtype and only the
    matmuls in the weights' precision (`matmul_weights`), so the state is not rounded to bfloat16
    at every step.

        [q, ρ] = s_{i-1}·[W_a | U_zr]       the attention query and the recurrent z/r term
        c_i, α_i = attention(q)              `nmt.model.attention.additive_attention`
        a = projected + c_i·C                 [B, 3H], gate blocks [z, r, h]
        s_i = `nmt.model.gru.gru_update`(a, ρ, s_{i-1})   the GRU equations, written once in nmt/model/gru.py

    The same function as `cell.step(projected + cell.context_projection(c_i), s_{i-1})`, with the
    query and the z/r term sharing one matmul. Returns (s_i [B, H], c_i [B, C] in the
    encoder_outputs' dtype, α_i float32 [B, S], q [B, A], z‖r [B, 2H], s̃ [B, H]); the last three
    are kept for the backward pass.
    """
    units = hidden.shape[-1]
    attention_units = weights["hidden_kernel"].shape[-1] - 2 * units
    hq = matmul_weights(hidden, weights["hidden_kernel"])  # [B, A + 2H]
    query, recurrent_zr = tf.split(hq, [attention_units, 2 * units], axis=1)
    context, attention = additive_attention(
        query,
        memory["keys"],
        memory["encoder_outputs"],
        memory["source_mask"],
        weights["score_vector"],
    )  # [B, C], [B, S]
    a = projected + tf.cast(tf.matmul(context, weights["context_kernel"]), projected.dtype)  # [B, 3H]
    new_hidden, zr, candidate = gru_update(a, recurrent_zr, hidden, hidden, weights["candidate_kernel"])
    return new_hidden, context, attention, query, zr, candidate


def _autodiff_recurrence(projected, h0, memory, weights):
    """The teacher-forced loop differentiated by TensorFlow: projected [T, B, 3H], h0 [B, H] ->
    (states [T, B, H], contexts [T, B, C]). The oracle for `attention_gru_recurrence`."""
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


def attention_gru_recurrence(projected, h0, memory, weights):
    """The teacher-forced attention decoder over all steps, with a hand-written backward pass.

    projected [T, B, 3H] (target input projections), h0 s_0 [B, H], memory and weights as in
    `attention_gru_step` -> (states s_1..s_T [T, B, H], contexts c_1..c_T [T, B, C]).

    The forward loop runs `attention_gru_step` and keeps q, α, z‖r, s̃ per step; the backward loop
    carries only d s, and the weight gradients (d[W_a | U_zr], dC, dU_h) are one large matmul
    each after it, over all B·T rows, instead of T small ones inside the loop.

    Under mixed precision (bfloat16 kernels) the states, the gates, the attention scores and all
    their gradients are float32 and only the matmuls run in bfloat16, as in `attention_gru_step`:
    states come back in float32, contexts in the encoder outputs' dtype.
    """
    w_hq, w_c = weights["hidden_kernel"], weights["context_kernel"]
    u_h = weights["candidate_kernel"]
    dtype = _state_dtype(w_hq.dtype)  # the state and the element-wise arithmetic
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

        def body(t, hidden, hs, cs, qs, alphas, zrs, cands):
            hidden, context, alpha, query, zr, cand = attention_gru_step(projected[t], hidden, mem, wts)
            return (
                t + 1,
                hidden,
                hs.write(t, hidden),
                cs.write(t, context),
                qs.write(t, query),
                alphas.write(t, alpha),
                zrs.write(t, zr),
                cands.write(t, cand),
            )

        loop = tf.while_loop(
            lambda t, *_: t < steps,
            body,
            (0, h0, ta(), ta(values.dtype), ta(), ta(tf.float32), ta(), ta()),
            maximum_iterations=steps,
        )
        states, contexts, queries, alphas, zrs, cands = (x.stack() for x in loop[2:])

        def grad(d_states, d_contexts):
            d_states = tf.zeros_like(states) if d_states is None else tf.cast(d_states, dtype)
            d_contexts = tf.zeros_like(contexts, dtype) if d_contexts is None else tf.cast(d_contexts, dtype)
            h_prev = tf.concat([h0[None], states[:-1]], axis=0)  # [T, B, H]
            u_h_t, w_c_t, w_hq_t = tf.transpose(u_h), tf.transpose(w_c), tf.transpose(w_hq)

            def back(t, dh, d_keys, d_v, d_hqs, d_as, d_cs):
                dh = dh + d_states[t]
                h, alpha = h_prev[t], alphas[t]
                d_zr, d_ah, d_h, d_hd = gru_update_backward(dh, h, h, zrs[t], cands[t], u_h_t)  # nmt/model/gru.py
                d_a = tf.concat([d_zr, d_ah], axis=1)  # pre-activations of the gates: [B, 3H]
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
                d_hq = tf.concat([tf.reduce_sum(d_pre, axis=1), d_zr], axis=1)  # [B, A + 2H]
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
            rh = zrs[:, :, units:] * h_prev  # r ⊙ s_{i-1}: [T, B, H]
            d_u_h = tf.matmul(rows(rh), rows(d_a[:, :, 2 * units :]), transpose_a=True)
            d_values = tf.einsum(  # Σ_t α_t,bs · dc_t,bc
                "tbs,tbc->bsc", tf.cast(alphas, values.dtype), tf.cast(d_c, values.dtype)
            )
            return d_a, dh0, d_keys, d_values, d_w_hq, d_w_c, d_u_h, d_v

        return (states, contexts), grad

    return run(projected, h0, keys, values, w_hq, w_c, u_h, v)


@keras.saving.register_keras_serializable(package="nmt")
class AttentionDecoder(_Decoder):
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
        state_dtype = _state_dtype(self.compute_dtype)  # float32 under mixed precision
        s_0 = initial_decoder_state(self, final_states[-1], tf.shape(values)[0])
        return {
            "memory": {
                "encoder_outputs": values,  # h_j: [B, S, C]
                "keys": tf.cast(self.attention.project_keys(values), state_dtype),  # U_a·h_j: [B, S, A]
                "source_mask": tf.cast(source_mask, tf.float32),  # [B, S]
            },
            "recurrent": {"hidden": tf.cast(s_0, state_dtype)},  # s_0: [B, H]
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
            "score_vector": ops.cast(self.attention.score_vector, _state_dtype(dtype)),  # v_a: [A]
        }

    def _advance(self, projected, hidden, memory, weights):
        """One decoder step: projected [B, 3H] (target input projection x·W + b), hidden s_{i-1}
        [B, H], weights from `_step_weights` -> (s_i [B, H], c_i [B, C], attention float32 [B, S])."""
        return attention_gru_step(projected, hidden, memory, weights)[:3]

    def call(self, target_in, state, training=None, autodiff=False):
        """target_in int [B, T] (BOS first, 0-padded), state from `start`
        -> logits float32 [B, T, V].

        `autodiff=True` runs the same steps in a plain tf.while_loop differentiated by TensorFlow
        (slower; the oracle for the hand-written gradient)."""
        memory = state["memory"]
        hidden = ops.cast(state["recurrent"]["hidden"], _state_dtype(self.compute_dtype))
        embedded = self.embed(target_in, training)  # [B, T, E]
        projected = self.cell.input_projection(tf.transpose(embedded, [1, 0, 2]))  # [T, B, 3H]
        projected = ops.cast(projected, hidden.dtype)  # the state dtype: float32 under mixed precision
        run = _autodiff_recurrence if autodiff else attention_gru_recurrence
        states, contexts = run(projected, hidden, memory, self._step_weights())
        hidden_seq = tf.transpose(states, [1, 0, 2])  # [B, T, H]
        context_seq = tf.transpose(contexts, [1, 0, 2])  # [B, T, C]
        return self.readout(hidden_seq, embedded, self.readout_context(context_seq), training)

    def step(self, tokens, state):
        """tokens int [B], state -> (logits float32 [B, V], new state, attention float32 [B, S])."""
        memory = state["memory"]
        embedded = self.embed(tokens)  # [B, E]
        state_dtype = _state_dtype(self.compute_dtype)  # float32 under mixed precision
        projected = ops.cast(self.cell.input_projection(embedded), state_dtype)  # [B, 3H]
        hidden = ops.cast(state["recurrent"]["hidden"], state_dtype)
        hidden, context, attention = self._advance(projected, hidden, memory, self._step_weights())
        logits = self.readout(hidden, embedded, self.readout_context(context))
        return logits, {"memory": memory, "recurrent": {"hidden": hidden}}, attention

    def get_config(self):
        config = super().get_config()
        config.update(
            attention_units=self.attention_units,
            decoder_init=self.decoder_init,
            encoder_state_dim=self.encoder_state_dim,
        )
        return config

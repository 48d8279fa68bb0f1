"""The gated recurrent unit of docs/DESIGN.md, as a Keras 3 cell and layer.

Equations (σ = logistic sigmoid, ⊙ = element-wise product), for one step with input x_t and
previous state h_{t-1}, and optionally a per-sequence context c (Cho et al. 2014's decoder):

    z_t  = σ(x_t·W_z + h_{t-1}·U_z + c·C_z + b_z)              update gate
    r_t  = σ(x_t·W_r + h_{t-1}·U_r + c·C_r + b_r)              reset gate
    h̃_t = tanh(x_t·W_h + (r_t ⊙ h_{t-1})·U_h + c·C_h + b_h)    reset applied BEFORE the matmul
    h_t  = (1 − z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t                     z near 1 takes the new content

Weights: `kernel` (input_dim, 3H), `recurrent_kernel` (H, 3H), `bias` (3H,) and, when the layer
is called with a context, `context_kernel` (context_dim, 3H); gate blocks in the order [z, r, h].
That is the layout of `keras.layers.GRU(reset_after=False)`, which mixes z·h_{t-1} + (1 − z)·h̃:
negating the update-gate block of its three weights gives our function exactly.

The equations are written once, forward (`gru_step`) and backward (`gru_step_backward`), from the
gates' pre-activations: each caller computes the matmuls of h_{t-1} its own way and then runs the
same gate arithmetic. `GRUCell.step` (decoding) does one [H, 2H] matmul for z and r; the layer's
loop (`_gru_recurrence`) one [H, H] matmul per gate, so z's does not wait for the reset path
h·U_r -> r ⊙ h -> ·U_h; the Bahdanau decoder (`nmt.model.bahdanau`) fuses h·U_zr with its
attention query's matmul.

Speed: everything that does not depend on the state is outside the time loop (the input and
context projections for all steps are one matmul per gate block), and the loop body is kept to as
few operations as possible, since on a CPU the per-step op count decides the layer's time as much
as the matmuls do (bench/bench_gru.py measures it; figures in docs/RESULTS.md).
Backpropagation through time is written out (`_gru_recurrence`'s custom gradient): it keeps the
gates of the forward loop, runs a lean backward loop, and computes the recurrent-weight gradient as
one large matmul per gate after it instead of T small ones.

Mixed precision (bfloat16 or float16 compute dtype, float32 weights): the state and every
element-wise gate operation stay in float32 and only the matmul operands are cast to the weights'
precision (`matmul_weights`). Rounding h_t and the gates to bfloat16 at every step was both slower
and less exact on the CPUs measured (bench/bench_gru.py).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops


def state_dtype(compute_dtype):
    """The dtype of the state and the gate arithmetic: float32 where the compute dtype is bfloat16
    or float16 (mixed precision), else the compute dtype itself."""
    compute_dtype = tf.as_dtype(compute_dtype)
    return tf.float32 if compute_dtype in (tf.bfloat16, tf.float16) else compute_dtype


def in_float32(initializer):
    """`initializer` computed in float32 and cast to the variable's dtype: the orthogonal initializer's
    tf.linalg.qr has no bfloat16 kernel, so a cell with bfloat16 variables (a model copied for decoding,
    `nmt.model.precision.with_policy`) could not be built otherwise. The same values for float32 variables."""

    def init(shape, dtype=None):
        return keras.ops.cast(initializer(shape, dtype="float32"), dtype)

    return init


def matmul_weights(a, w):
    """a [..., K] · w [K, N] -> [..., N] in a's dtype. Under mixed precision the state and the gate
    arithmetic stay in float32 while the weights are bfloat16 (or float16): only the product runs in
    the weights' precision (a is cast for it, the result cast back), so the recurrence gains the fast
    matmul without rounding h_t to 8 bits of mantissa at every step."""
    if a.dtype == w.dtype:
        return tf.matmul(a, w)
    return tf.cast(tf.matmul(tf.cast(a, w.dtype), w), a.dtype)


def gru_step(a_z, a_r, x_h, h, hd, u_h, step_mask=None):
    """The GRU equations of one step, from what the caller's matmuls gave.

    a_z, a_r: [B, H] the update and reset gates' pre-activations (x·W + b (+ c·C) + hd·U for z
    and r); x_h: [B, H] the candidate's input term x·W_h + b_h (+ c·C_h); h: [B, H] the previous
    state; hd: [B, H] the state the recurrent weights read (h, or h ⊙ a recurrent-dropout mask);
    all in the state dtype (`state_dtype`). u_h: [H, H] U_h in the weights' dtype. step_mask:
    [B, 1] or None; 0 on a masked step, where z = 0 carries h unchanged (binary: the backward pass
    relies on it).

        z = σ(a_z);  r = σ(a_r);  h̃ = tanh(x_h + (r ⊙ hd)·U_h);  h_new = (1 − z) ⊙ h + z ⊙ h̃

    (1 − z) ⊙ h is computed beside the reset path, so two operations follow h̃ on the chain from
    step to step.
    Returns (h_new [B, H], z [B, H] (masked), r [B, H], h̃ [B, H], all in the state dtype, and
    r ⊙ hd [B, H] in u_h's dtype, the operand of the U_h matmul and of its weight gradient).
    """
    dtype = x_h.dtype
    r = tf.sigmoid(a_r)
    rh_w = tf.cast(r * hd, u_h.dtype)
    cand = tf.tanh(x_h + tf.cast(tf.matmul(rh_w, u_h), dtype))  # reset before the matmul
    z = tf.sigmoid(a_z)
    if step_mask is not None:
        z = step_mask * z  # z = 0 on a masked step: h is carried unchanged
    h_new = (1 - z) * h + z * cand
    return h_new, z, r, cand, rh_w


def gru_step_backward(g, h, hd, z, r, cand, u_h_t):
    """The backward pass of `gru_step` for one step.

    g: [B, H] dL/dh_new; h, hd: [B, H] the step's inputs; z, r, cand: [B, H] what `gru_step`
    returned (z masked); all in the state dtype. u_h_t: [H, H] U_hᵀ in the weights' dtype.

    With a binary step mask m and the kept z_m = m·z: m·g·z = g·z_m, m·z·(1 − z) = z_m·(1 − z_m),
    and the direct path m·g·(1 − z) + (1 − m)·g = g·(1 − z_m), so the mask costs no operation here.
    Factors that do not depend on g are grouped, so that each product with a gradient is one
    operation on the chain from step to step.

    Returns, [B, H] each:
        d_a_z, d_a_r, d_a_h   the gradients of z's, r's and h̃'s pre-activations (state dtype);
        d_a_h_w               d_a_h in u_h_t's dtype (the operand the U_h matmul read);
        d_h                   g ⊙ (1 − z), the gradient reaching h through (1 − z) ⊙ h;
        d_hd                  (d_a_h·U_hᵀ) ⊙ r, the gradient reaching hd through r ⊙ hd.
    The caller adds d_a_z·U_zᵀ + d_a_r·U_rᵀ (its own matmuls' transposes) to d_hd.
    """
    dtype = g.dtype
    d_z = g * z
    d_a_h = d_z * (1 - cand * cand)  # h̃'s
    d_a_h_w = tf.cast(d_a_h, u_h_t.dtype)
    d_a_z = g * ((cand - h) * (z * (1 - z)))  # z's
    d_rh = tf.cast(tf.matmul(d_a_h_w, u_h_t), dtype)  # d(r ⊙ hd)
    d_a_r = d_rh * (hd * (r * (1 - r)))  # r's
    return d_a_z, d_a_r, d_a_h, d_a_h_w, g * (1 - z), d_rh * r


def gru_cell_step(projected, h, u):
    """One step from a projection, as `GRUCell.step` runs it (decoding, one step at a time).

    projected: [B, 3H] x·W + b (+ c·C), gate blocks [z, r, h]; h: [B, H] the previous state; both
    in the state dtype. u: [H, 3H] the recurrent kernel in the weights' dtype.
    h·U_z and h·U_r are one [H, 2H] matmul, then `gru_step`. Returns h_new [B, H] in h's dtype.
    """
    units = u.shape[0]
    x_z, x_r, x_h = tf.split(projected, 3, axis=-1)  # [B, H] each
    u_zr, u_h = tf.split(u, [2 * units, units], axis=-1)  # [H, 2H], [H, H]
    rec_z, rec_r = tf.split(matmul_weights(h, u_zr), 2, axis=-1)  # h·U_z, h·U_r: [B, H] each
    return gru_step(x_z + rec_z, x_r + rec_r, x_h, h, h, u_h)[0]


def _gru_recurrence(x_z, x_r, x_h, h0, step_mask, u, rec_mask, read_lists=False):
    """Runs the recurrence over time, with a hand-written backward pass (gates kept from the forward).

    x_z, x_r, x_h: [T, B, H] each, the time-major projected inputs of the update gate, the reset
    gate and the candidate (`GRUCell.gate_projections`). h0: [B, H]. step_mask: [T, B, 1] (1 = real
    step, 0 = masked: the state is carried unchanged; binary, as the backward pass relies on it) or
    None. u: [H, 3H]. rec_mask: [B, H] or None.
    Returns states [T, B, H] (h_t after each step) and the last state [B, H], in x_z's dtype.

    Each step runs `gru_step` after one matmul per gate block (the blocks of the inputs and of u
    kept apart: no step copies a column slice, no gradient is concatenated); the backward loop runs
    `gru_step_backward`. In bfloat16 or float16 (mixed precision) h, the gates and their gradients
    are float32 and only the matmuls run in u's precision: the same equations, no per-step rounding
    of the state, and no element-wise work in a precision a CPU emulates.

    read_lists: the backward loop reads what the forward kept (h_{t-1}, z, r, h̃) straight from the
    forward loop's TensorLists instead of from [T, B, H] copies stacked after it, which saves those
    copies (measured faster by bench/bench_gru.py). A SavedModel cannot store a custom gradient that
    captures TensorLists (variant tensors), so the layer asks for it only when training; exports and
    inference trace the stacked form, whose gradient is the same function.
    """
    units = u.shape[0]
    out_dtype = x_z.dtype
    dtype = state_dtype(out_dtype)
    n_steps = tf.shape(x_z)[0]
    if rec_mask is not None:
        rec_mask = tf.cast(rec_mask, dtype)

    @tf.custom_gradient
    def run(x_z_in, x_r_in, x_h_in, h0_in, u, *extra):
        h0 = tf.cast(h0_in, dtype)
        x_z, x_r, x_h = (tf.cast(x, dtype) for x in (x_z_in, x_r_in, x_h_in))  # [T, B, H] each
        step_mask = tf.cast(extra[0], dtype) if has_mask else None
        u_z, u_r, u_h = tf.split(u, 3, axis=-1)  # [H, H] each

        def array(dtype=dtype):  # read_lists: read by the backward loop, which may run twice
            return tf.TensorArray(dtype, size=n_steps, element_shape=[h0.shape[0], units], clear_after_read=False)

        def step(t, h, h_w, outs, kept, rh_ws):
            hd, hd_w = (h, h_w) if rec_mask is None else (h * rec_mask, None)
            if hd_w is None:
                hd_w = tf.cast(hd, u.dtype)  # the matmul operand, cast once for U_z and U_r
            a_r = x_r[t] + tf.cast(tf.matmul(hd_w, u_r), dtype)  # [B, H]
            a_z = x_z[t] + tf.cast(tf.matmul(hd_w, u_z), dtype)  # [B, H], beside the reset path
            mask_t = None if step_mask is None else step_mask[t]  # [B, 1]
            h_new, z, r, cand, rh_w = gru_step(a_z, a_r, x_h[t], h, hd, u_h, mask_t)
            h_new_w = tf.cast(h_new, u.dtype)  # the next step's matmul operand and this step's output
            kept = tuple(a.write(t, v) for a, v in zip(kept, (h, z, r, cand)))
            return t + 1, h_new, h_new_w, outs.write(t, h_new_w), kept, rh_ws.write(t, rh_w)

        carry = (0, h0, tf.cast(h0, u.dtype), array(u.dtype), tuple(array() for _ in range(4)), array(u.dtype))
        _, h_last, _, outs, kept, rh_ws = tf.while_loop(lambda t, *_: t < n_steps, step, carry)
        states_w, rh_seq_w = outs.stack(), rh_ws.stack()  # [T, B, H], in the weights' precision
        if read_lists:
            kept_at = lambda t: tuple(a.read(t) for a in kept)  # noqa: E731
        else:
            kept_seqs = tuple(a.stack() for a in kept)  # [T, B, H] each
            kept_at = lambda t: tuple(seq[t] for seq in kept_seqs)  # noqa: E731

        def grad(d_states, d_last):
            d_states, d_last = tf.cast(d_states, dtype), tf.cast(d_last, dtype)
            # d_states[t - 1] at t (zero at t = 0), added into dL/dh_{t-1} by the step's one AddN
            d_states_prev = tf.concat([tf.zeros_like(d_states[:1]), d_states[:-1]], axis=0)
            u_z_t, u_r_t, u_h_t = tf.transpose(u_z), tf.transpose(u_r), tf.transpose(u_h)  # [H, H]

            def back(t, g, d_zs, d_rs, d_cands):  # g = dL/dh_t (through h_{t+1} and the output at t)
                h_prev, z, r, cand = kept_at(t)  # z is masked
                hd = h_prev if rec_mask is None else h_prev * rec_mask
                d_a_z, d_a_r, _, d_a_h_w, d_h, d_rh_r = gru_step_backward(g, h_prev, hd, z, r, cand, u_h_t)
                # the pre-activation gradients in the weights' precision, for the matmuls
                d_a_z_w, d_a_r_w = tf.cast(d_a_z, u.dtype), tf.cast(d_a_r, u.dtype)
                d_hd = [d_rh_r, tf.cast(tf.matmul(d_a_z_w, u_z_t), dtype), tf.cast(tf.matmul(d_a_r_w, u_r_t), dtype)]
                if rec_mask is not None:
                    d_hd = [tf.add_n(d_hd) * rec_mask]
                g_prev = tf.add_n([d_h, d_states_prev[t]] + d_hd)  # h_t = (1 − z)·h_{t-1} + …
                return t - 1, g_prev, d_zs.write(t, d_a_z_w), d_rs.write(t, d_a_r_w), d_cands.write(t, d_a_h_w)

            g_last = d_last + d_states[n_steps - 1]
            carry = (n_steps - 1, g_last, array(u.dtype), array(u.dtype), array(u.dtype))
            _, dh0, *d_arrays = tf.while_loop(lambda t, *_: t >= 0, back, carry)
            # the pre-activation gradients [T, B, H], already in the weights' precision (the loop
            # cast them for its matmuls): the inputs' gradients and, as [T·B, H] rows, dU's operands
            d_z_seq, d_r_seq, d_cand_seq = (tf.cast(a.stack(), out_dtype) for a in d_arrays)

            def rows(seq):  # [T, B, H] -> [T·B, H] in the weights' precision
                return tf.cast(tf.reshape(seq, [-1, units]), u.dtype)

            # h_{t-1} as the recurrent matmuls read it, [T, B, H]
            if rec_mask is None:
                hd_seq = tf.concat([tf.cast(h0, u.dtype)[None], states_w[:-1]], axis=0)
            else:
                hd_seq = (kept[0].stack() if read_lists else kept_seqs[0]) * rec_mask
            # Σ_t hd_tᵀ·δ_t for each gate as one [H, T·B] x [T·B, H] product
            hd_rows, rh_rows = rows(hd_seq), rows(rh_seq_w)
            d_u = tf.concat(
                [
                    tf.matmul(hd_rows, rows(d_z_seq), transpose_a=True),
                    tf.matmul(hd_rows, rows(d_r_seq), transpose_a=True),
                    tf.matmul(rh_rows, rows(d_cand_seq), transpose_a=True),
                ],
                axis=-1,
            )  # [H, 3H]
            return (d_z_seq, d_r_seq, d_cand_seq, tf.cast(dh0, h0_in.dtype), d_u) + (None,) * len(extra)

        return (tf.cast(states_w, out_dtype), tf.cast(h_last, out_dtype)), grad

    has_mask = step_mask is not None
    extra = (step_mask,) if has_mask else ()
    return run(x_z, x_r, x_h, h0, u, *extra)


def _check_rate(name, value):
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name} must be in [0, 1); received {value!r}")
    return float(value)


@keras.saving.register_keras_serializable(package="nmt")
class GRUCell(keras.layers.Layer):
    """The weights of the GRU and its one-step function (for decoders and beam search).

    `cell(x, h, context=None)` maps x [B, input_dim] and h [B, H] (and a context [B, context_dim]
    when the weights were built with one) to the new state [B, H]. Decoders that step many times
    with one context call `context_projection` once and pass its result to `step`.
    """

    def __init__(
        self,
        units,
        dropout=0.0,
        recurrent_dropout=0.0,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(units, int) or units <= 0:
            raise ValueError(f"units must be a positive integer; received {units!r}")
        self.units = units
        self.dropout = _check_rate("dropout", dropout)
        self.recurrent_dropout = _check_rate("recurrent_dropout", recurrent_dropout)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.state_size = units
        self.output_size = units
        self.context_kernel = None

    def build(self, inputs_shape, context_shape=None):
        input_dim = inputs_shape[-1]
        if input_dim is None:
            raise ValueError(f"the last input dimension must be known; received {inputs_shape}")
        self.kernel = self.add_weight(
            name="kernel", shape=(input_dim, 3 * self.units), initializer=self.kernel_initializer
        )
        self.recurrent_kernel = self.add_weight(
            name="recurrent_kernel",
            shape=(self.units, 3 * self.units),
            initializer=in_float32(self.recurrent_initializer),
        )
        self.bias = self.add_weight(name="bias", shape=(3 * self.units,), initializer=self.bias_initializer)
        if context_shape is not None:
            self.context_kernel = self.add_weight(
                name="context_kernel",
                shape=(context_shape[-1], 3 * self.units),
                initializer=self.kernel_initializer,
            )
        self.built = True

    def _weight(self, variable):
        return ops.cast(variable, self.compute_dtype)

    def input_projection(self, x):
        """x [..., input_dim] -> x·W + b [..., 3H]."""
        return self._project(x, self._weight(self.kernel), self._weight(self.bias))

    def gate_projections(self, x):
        """x [..., input_dim] -> (x·W_z + b_z, x·W_r + b_r, x·W_h + b_h), [..., H] each:
        `input_projection` as one matmul per gate block, so the recurrence slices no columns."""
        kernels = tf.split(self._weight(self.kernel), 3, axis=-1)  # one concat in the gradient, not 3 pads
        biases = tf.split(self._weight(self.bias), 3, axis=-1)
        return tuple(self._project(x, kernel, bias) for kernel, bias in zip(kernels, biases))

    def _project(self, x, kernel, bias):
        x = ops.cast(x, self.compute_dtype)
        if len(x.shape) == 2:
            return ops.matmul(x, kernel) + bias
        # A broadcasting batch matmul would sum a per-step weight gradient; one 2-D matmul does not.
        flat = tf.reshape(x, [-1, x.shape[-1]])  # [N, E]
        out_shape = tf.concat([tf.shape(x)[:-1], [kernel.shape[-1]]], axis=0)
        return tf.reshape(tf.matmul(flat, kernel) + bias, out_shape)  # [..., width]

    def context_projection(self, context):
        """context [B, context_dim] -> context·C [B, 3H], computed once per sequence."""
        if self.context_kernel is None:
            raise ValueError("this GRU was built without a context; call it with `context=` on first use")
        context = ops.cast(context, self.compute_dtype)
        return ops.matmul(context, self._weight(self.context_kernel))

    def step(self, projected, h):
        """One step from a projection [B, 3H] (input_projection (+ context_projection)) -> [B, H].

        Under mixed precision the gates are computed in float32, as in the layer's loop, and only
        the matmuls run in the compute dtype (`gru_cell_step`)."""
        dtype = state_dtype(self.compute_dtype)
        projected, h = ops.cast(projected, dtype), ops.cast(h, dtype)
        h_new = gru_cell_step(projected, h, self._weight(self.recurrent_kernel))
        return ops.cast(h_new, self.compute_dtype)

    def call(self, inputs, states, context=None, training=None):
        """Keras cell contract: (x [B, E], h or [h]) -> (h_new, [h_new])."""
        h = states[0] if isinstance(states, (list, tuple)) else states
        projected = self.input_projection(inputs)
        if context is not None:
            projected = projected + self.context_projection(context)
        h_new = self.step(projected, h)
        return h_new, [h_new]

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            dropout=self.dropout,
            recurrent_dropout=self.recurrent_dropout,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            recurrent_initializer=keras.initializers.serialize(self.recurrent_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
            seed=self.seed,
        )
        return config


@keras.saving.register_keras_serializable(package="nmt")
class GRU(keras.layers.Layer):
    """GRU over a sequence: inputs [B, T, input_dim] -> outputs.

    Returns the last state [B, H], or with `return_sequences` all states [B, T, H] (in the order
    processed: reversed in time when `go_backwards`, as Keras does); with `return_state` a tuple
    `(output, last_state)`. A masked step leaves the state unchanged; its output repeats the
    previous output (zero before the first unmasked step), or is zero when `zero_output_for_mask`
    is set (Keras' Bidirectional sets it when returning sequences) — all as Keras' GRU does.

    Call: `layer(inputs, initial_state=None, mask=None, training=None, context=None)`, with
    initial_state [B, H] (or a one-element list) and context [B, context_dim] entering all three
    gates at every step; its projection is computed once per sequence.
    """

    def __init__(
        self,
        units,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        dropout=0.0,
        recurrent_dropout=0.0,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        zero_output_for_mask=False,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.cell = GRUCell(
            units,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            seed=seed,
            dtype=self.dtype_policy,
            name="cell",
        )
        self.units = units
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.stateful = False  # Keras' Bidirectional reads these two attributes
        self.states = None
        self.supports_masking = True

    def build(self, inputs_shape, initial_state_shape=None, context_shape=None):
        if len(inputs_shape) != 3:
            raise ValueError(f"GRU expects inputs [batch, time, features]; received shape {inputs_shape}")
        self.cell.build(inputs_shape, context_shape)
        self.built = True

    def compute_output_shape(self, inputs_shape, initial_state_shape=None, context_shape=None):
        batch, steps = inputs_shape[0], inputs_shape[1]
        out = (batch, steps, self.units) if self.return_sequences else (batch, self.units)
        return (out, (batch, self.units)) if self.return_state else out

    def compute_mask(self, inputs, mask=None):
        out_mask = mask if self.return_sequences else None
        return [out_mask, None] if self.return_state else out_mask

    def call(self, inputs, initial_state=None, mask=None, training=None, context=None):
        cell = self.cell
        dtype = cell.compute_dtype
        x = ops.cast(inputs, dtype)  # [B, T, E]
        batch = ops.shape(x)[0]
        if mask is None:
            mask = getattr(inputs, "_keras_mask", None)
        if isinstance(initial_state, (list, tuple)):
            if len(initial_state) != 1:
                raise ValueError(f"GRU has one state; received {len(initial_state)} initial states")
            initial_state = initial_state[0]
        if initial_state is None:
            h0 = ops.zeros((batch, self.units), dtype=dtype)
        else:
            h0 = ops.cast(initial_state, dtype)

        rec_mask = None
        if training and cell.dropout > 0:
            keep = keras.random.dropout(
                ops.ones_like(x[:, 0, :]), cell.dropout, seed=cell.seed_generator
            )  # [B, E], one mask for all steps
            x = x * keep[:, None, :]
        if training and cell.recurrent_dropout > 0:
            rec_mask = keras.random.dropout(
                ops.ones_like(h0), cell.recurrent_dropout, seed=cell.seed_generator
            )  # [B, H]

        x_tm = tf.transpose(x, [1, 0, 2])  # [T, B, E]
        if self.go_backwards:
            x_tm = tf.reverse(x_tm, [0])
        gates = cell.gate_projections(x_tm)  # ([T, B, H] z, r, h̃): all steps in one matmul each
        if context is not None:
            contexts = tf.split(cell.context_projection(context), 3, axis=-1)  # once per sequence
            gates = tuple(g + c[None] for g, c in zip(gates, contexts))
        step_mask = None
        if mask is not None:
            step_mask = tf.transpose(ops.cast(mask, dtype))[:, :, None]  # [T, B, 1]
            if self.go_backwards:
                step_mask = tf.reverse(step_mask, [0])

        states, h_last = _gru_recurrence(
            *gates, h0, step_mask, cell._weight(cell.recurrent_kernel), rec_mask, read_lists=training is True
        )
        if self.return_sequences:
            if step_mask is not None and self.zero_output_for_mask:
                states = states * step_mask
            elif step_mask is not None:
                # As Keras: a masked step repeats the previous output, and the output before the
                # first real step (left padding, or right padding read backwards) is zero.
                started = tf.cast(tf.cumsum(step_mask, axis=0) > 0, dtype)  # [T, B, 1]
                states = states * started
            output = tf.transpose(states, [1, 0, 2])  # [B, T, H]
        else:
            output = h_last
        return (output, h_last) if self.return_state else output

    def get_config(self):
        config = super().get_config()
        cell_config = self.cell.get_config()
        for key in ("name", "trainable", "dtype"):
            cell_config.pop(key, None)
        config.update(cell_config)
        config.update(
            return_sequences=self.return_sequences,
            return_state=self.return_state,
            go_backwards=self.go_backwards,
            zero_output_for_mask=self.zero_output_for_mask,
        )
        return config

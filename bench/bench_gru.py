#!/usr/bin/env python
"""Forward + backward speed of nmt.model.gru.GRU next to Keras' GRUs, torch.nn.GRU and oneDNN's fused GRU
primitives, in one run; and GRUs against LSTMs of the same size (keras.layers.LSTM, torch.nn.LSTM) with
each layer's parameter count.

Each contender computes the full output sequence of one GRU layer and the gradients with respect
to the inputs and every weight, for a fixed random cotangent. TensorFlow layers run inside a
tf.function, once without and once with XLA; torch.nn.GRU (when importable) runs in its own
subprocess so TensorFlow's thread pools do not slow it down. Times are medians of --repeats runs
after --warmup runs. GFLOP/s count 2·B·T·3H·(3E + 3H) FLOPs (forward + backward) and stand next to
the GFLOP/s of a 2048³ float32 matmul measured in the same run. The hand-written backward passes
(nmt.model.gru's recurrence and the Bahdanau decoder's) are timed against TensorFlow's autodiff of the
same loops, so what they buy is measured in the same run. The GRU-against-LSTM table counts
each layer's parameters from its weights (not from a formula), so the claim that a GRU has fewer
parameters and runs faster than an LSTM of the same width is measured here, not repeated.

For bfloat16 the script also measures a 2048³ bfloat16 matmul (with and without XLA) and lists the
processor's bfloat16 instructions, because the bfloat16 speed-up is bounded by the hardware: no
GRU can run its matmuls faster than the machine's best bfloat16 matmul, so the largest possible
speed-up is (bfloat16 matmul GFLOP/s) / (float32 GRU GFLOP/s). Without AVX512_BF16 or AMX on a
CPU, bfloat16 is converted to float32 around every product and that bound is below 1. A tighter
bound comes from the layer's own matmuls, timed alone at its shapes ([B, H] x [H, 2H] and [B, H] x
[H, H] per step, forward and backward, and the whole-sequence weight matmuls): small per-step
products use the bfloat16 units far less well than a 2048^3 product.

    python bench/bench_gru.py [--batch 64 --length 30 --input 256 --units 512]

oneDNN's fused primitives (when `pip install onednn-devel-cpu-gomp==2023.2.0` and g++ are there;
benchmark-only, never a dependency) show what one library call per sequence with packed weights
reaches: `vanilla_gru` is exactly nmt.model.gru's GRU (checked here against nmt.model.gru.GRU on the same float32
inputs and weights before its time is shown), `lbr_gru` is torch.nn.GRU's linear-before-reset
variant. bench/bench_onednn_gru.cc is compiled into a temporary folder and run in its own process.

The two verdicts (nmt.model.gru.GRU bfloat16 at least 1.6x faster than its float32, and no slower than
torch.nn.GRU bfloat16) come from interleaved rounds, not from the table: the three contenders are
timed again in alternation, --rounds times, and each verdict is the median of the per-round ratios.
On a shared VM the speed drifts over minutes, so two times taken minutes apart (as the table's are)
can differ by 20 % for the same code; two taken in the same round are compared under the same load.

Keras' `fit` turns XLA on by default for TensorFlow; a layer called in a plain tf.function, as
here in the "graph" rows, runs without it. Every TensorFlow layer is called with training=True, as
`fit` calls it (torch.nn.GRU is in training mode too); none of them has dropout here.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--length", type=int, default=30)
    p.add_argument("--input", type=int, default=256)
    p.add_argument("--units", type=int, default=512)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument(
        "--rounds",
        type=int,
        default=7,
        help="rounds timing the verdicts' contenders in alternation "
        "(nmt.model.gru.GRU float32 and bfloat16, torch.nn.GRU bfloat16)",
    )
    p.add_argument("--dtypes", default="float32,bfloat16", help="comma-separated")
    p.add_argument("--no-torch", action="store_true", help="skip torch.nn.GRU")
    p.add_argument("--no-onednn", action="store_true", help="skip oneDNN's fused GRU primitives")
    p.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--torch-server", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for name in ("batch", "length", "input", "units", "repeats", "rounds"):
        if getattr(args, name) <= 0:
            p.error(f"--{name} must be positive; received {getattr(args, name)}")
    args.dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    for d in args.dtypes:
        if d not in ("float32", "bfloat16"):
            p.error(f"--dtypes: expected float32 and/or bfloat16; received {d!r}")
    return args


def median_time(fn, warmup, repeats):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def torch_fwd_bwd(args, cls, dtype):
    """A torch layer (cls: torch.nn.GRU or torch.nn.LSTM) in dtype with its input and cotangent ->
    (one forward + backward run as a function, parameter count)."""
    import torch

    layer = cls(args.input, args.units, batch_first=True).to(dtype)
    x = torch.randn(args.batch, args.length, args.input, dtype=dtype, requires_grad=True)
    cot = torch.randn(args.batch, args.length, args.units, dtype=dtype)
    params = list(layer.parameters())

    def step():
        y, _ = layer(x)
        torch.autograd.grad(y, [x] + params, grad_outputs=cot)

    return step, sum(p.numel() for p in params)


def torch_worker(args):
    """Runs in a subprocess: times torch.nn.GRU and torch.nn.LSTM, prints JSON
    {"times": {dtype: s}, "lstm_times": {dtype: s}, "params": {name: count}}."""
    import torch

    torch.manual_seed(0)
    out, lstm_out, counts = {}, {}, {}
    for dtype_name in args.dtypes:
        dtype = getattr(torch, dtype_name)
        for name, cls, times in (("torch.nn.GRU", torch.nn.GRU, out), ("torch.nn.LSTM", torch.nn.LSTM, lstm_out)):
            step, counts[name] = torch_fwd_bwd(args, cls, dtype)
            times[dtype_name] = median_time(step, args.warmup, args.repeats)
    print(json.dumps({"threads": torch.get_num_threads(), "times": out, "lstm_times": lstm_out, "params": counts}))


def torch_server(args):
    """Runs in a subprocess for the interleaved rounds: builds torch.nn.GRU in bfloat16 once, warms
    it up, prints "ready", then answers each line on stdin with one median time (seconds) of
    --repeats forward + backward runs."""
    import torch

    torch.manual_seed(0)
    step, _ = torch_fwd_bwd(args, torch.nn.GRU, torch.bfloat16)
    median_time(step, args.warmup, 1)
    print("ready", flush=True)
    for _ in sys.stdin:
        print(json.dumps(median_time(step, 0, args.repeats)), flush=True)


class TorchServer:
    """The torch.nn.GRU bfloat16 timer of the interleaved rounds, in its own process (as in
    `time_torch`), kept alive between rounds so each round only times."""

    def __init__(self, args):
        cmd = [sys.executable, os.path.abspath(__file__), "--torch-server"]
        cmd += ["--batch", str(args.batch), "--length", str(args.length), "--input", str(args.input)]
        cmd += ["--units", str(args.units), "--repeats", str(args.repeats), "--warmup", str(args.warmup)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            self.close()
            raise RuntimeError("the torch.nn.GRU timer did not start")

    def time(self):
        self.proc.stdin.write("time\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the torch.nn.GRU timer stopped")
        return json.loads(line)

    def close(self):
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def interleaved_rounds(args, layer_fns, with_torch):
    """The contenders of the two verdicts, timed in alternation: in each of --rounds rounds
    nmt.model.gru.GRU in float32 and in bfloat16 (graph and XLA, the functions `time_tf` traced) and
    torch.nn.GRU in bfloat16 (a long-lived subprocess) each get one median of --repeats timings, in
    an order reversed every other round. A VM's speed drifts over minutes (the same contender varies
    by 20 % between runs of this script), so a ratio of two times taken in the same round is far
    steadier than one of two times taken minutes apart. Returns (rounds, note): rounds a list of
    {"float32": s, "bfloat16": s[, "torch": s]} (nmt.model.gru.GRU at its best of graph and XLA), note why
    torch.nn.GRU could not join the rounds, or None."""
    server, note = None, None
    if with_torch:
        try:
            server = TorchServer(args)
        except (OSError, RuntimeError) as err:
            note = str(err)
    contenders = [(key, fn) for key, fn in layer_fns.items()]
    if server:
        contenders.append((("torch", None), server.time))
    rounds = []
    try:
        for i in range(args.rounds):
            times = {}
            for (dtype_name, _xla), fn in contenders if i % 2 == 0 else reversed(contenders):
                seconds = fn() if dtype_name == "torch" else median_time(fn, 0, args.repeats)
                times[dtype_name] = min(times.get(dtype_name, float("inf")), seconds)
            rounds.append(times)
            print(f"  round {i + 1} of {args.rounds} timed", file=sys.stderr, flush=True)
    finally:
        if server:
            server.close()
    return rounds, note


def time_torch(args):
    if args.no_torch:
        return None, "skipped (--no-torch)"
    cmd = [sys.executable, os.path.abspath(__file__), "--torch-worker"]
    cmd += ["--batch", str(args.batch), "--length", str(args.length), "--input", str(args.input)]
    cmd += ["--units", str(args.units), "--repeats", str(args.repeats)]
    cmd += ["--warmup", str(args.warmup), "--dtypes", ",".join(args.dtypes)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"not available ({last})"
    return json.loads(proc.stdout.strip().splitlines()[-1]), None


def onednn_prefix():
    """The prefix holding oneDNN's C++ headers and library (`pip install onednn-devel-cpu-gomp==2023.2.0`
    puts them under the environment's include/ and lib/), or None."""
    for prefix in (os.environ.get("ONEDNN_PREFIX"), sys.prefix):
        if prefix and os.path.exists(os.path.join(prefix, "include", "dnnl.hpp")):
            if os.path.exists(os.path.join(prefix, "lib", "libdnnl.so.3")):
                return prefix
    return None


def build_onednn(args):
    """Compiles bench/bench_onednn_gru.cc against oneDNN. Returns (binary path, None) or (None, why not)."""
    if args.no_onednn:
        return None, "skipped (--no-onednn)"
    prefix = onednn_prefix()
    compiler = shutil.which(os.environ.get("CXX") or "g++")
    if prefix is None or compiler is None:
        missing = "oneDNN's headers and library" if prefix is None else "a C++ compiler (g++ or $CXX)"
        return (
            None,
            f"not available ({missing} not found; pip install onednn-devel-cpu-gomp==2023.2.0 and g++ to compare)",
        )
    out_dir = tempfile.mkdtemp(prefix="bench_onednn_gru_")
    binary = os.path.join(out_dir, "bench_onednn_gru")
    lib = os.path.join(prefix, "lib")
    cmd = [compiler, "-O2", "-std=c++17", os.path.join(ROOT, "scripts", "bench_onednn_gru.cc")]
    cmd += ["-I", os.path.join(prefix, "include"), "-L", lib, "-l:libdnnl.so.3", f"-Wl,-rpath,{lib}", "-o", binary]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"not available (compiling bench_onednn_gru.cc failed: {last})"
    return binary, None


def check_onednn(args, binary):
    """Runs oneDNN's float32 vanilla_gru forward and nmt.model.gru.GRU on the same random inputs, initial
    state and weights. Returns the largest absolute difference of their output sequences (None when
    the oneDNN run failed)."""
    import numpy as np

    from nmt.model.gru import GRU

    B, T, E, H = args.batch, args.length, args.input, args.units
    rng = np.random.default_rng(3)
    x = rng.normal(size=(B, T, E)).astype("float32")
    h0 = rng.normal(size=(B, H)).astype("float32")
    layer = GRU(H, return_sequences=True)
    layer(x[:, :1], initial_state=h0)
    kernel, recurrent, bias = (0.1 * rng.normal(size=w.shape).astype("float32") for w in layer.weights)
    layer.set_weights([kernel, recurrent, bias])
    ours = np.asarray(layer(x, initial_state=h0))  # [B, T, H]
    with tempfile.TemporaryDirectory() as d:
        for name, array in (
            ("src", x.transpose(1, 0, 2)),  # oneDNN's tnc: [T, B, E]
            ("h0", h0),
            ("kernel", kernel),
            ("recurrent_kernel", recurrent),
            ("bias", bias),
        ):
            np.ascontiguousarray(array, dtype="<f4").tofile(os.path.join(d, name + ".f32"))
        sizes = [str(v) for v in (T, B, E, H)]
        proc = subprocess.run([binary, *sizes, "1", "0", d], capture_output=True, text=True)
        if proc.returncode != 0:
            return None
        theirs = np.fromfile(os.path.join(d, "dst.f32"), dtype="<f4").reshape(T, B, H).transpose(1, 0, 2)
    return float(np.max(np.abs(ours - theirs)))


def time_onednn(args, binary):
    """Times oneDNN's vanilla_gru and lbr_gru (in their own process, like torch). Returns the JSON."""
    sizes = [str(v) for v in (args.length, args.batch, args.input, args.units, args.repeats, args.warmup)]
    proc = subprocess.run([binary, *sizes], capture_output=True, text=True)
    if proc.returncode != 0:
        return None, f"failed ({(proc.stderr.strip().splitlines() or ['?'])[-1]})"
    return json.loads(proc.stdout.strip().splitlines()[-1]), None


def time_tf(args):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, ROOT)
    import keras
    import numpy as np
    import tensorflow as tf

    from nmt.model.gru import GRU

    rng = np.random.default_rng(0)
    a = tf.constant(rng.normal(size=(2048, 2048)).astype("float32"))
    matmul = tf.function(lambda: tf.matmul(a, a))
    mm_time = median_time(lambda: matmul().numpy(), 2, 5)
    matmul_gflops = {"float32": 2 * 2048**3 / mm_time / 1e9}
    if "bfloat16" in args.dtypes:
        a16 = tf.cast(a, tf.bfloat16)
        best = 0.0
        for xla in (False, True):
            matmul16 = tf.function(lambda: tf.matmul(a16, a16), jit_compile=xla)
            best = max(best, 2 * 2048**3 / median_time(lambda: matmul16().numpy(), 2, 5) / 1e9)
        matmul_gflops["bfloat16"] = best

    contenders = {
        "nmt.model.gru.GRU": lambda policy: GRU(args.units, return_sequences=True, dtype=policy),
        "keras GRU(reset_after=False)": lambda policy: keras.layers.GRU(
            args.units, reset_after=False, return_sequences=True, dtype=policy
        ),
        "keras GRU(reset_after=True)": lambda policy: keras.layers.GRU(
            args.units, reset_after=True, return_sequences=True, dtype=policy
        ),
        "keras LSTM": lambda policy: keras.layers.LSTM(args.units, return_sequences=True, dtype=policy),
    }
    params = {}
    x32 = rng.normal(size=(args.batch, args.length, args.input)).astype("float32")
    cot32 = rng.normal(size=(args.batch, args.length, args.units)).astype("float32")
    results, layer_fns = {}, {}
    for dtype_name in args.dtypes:
        policy = "float32" if dtype_name == "float32" else "mixed_bfloat16"
        x = tf.constant(x32, dtype=dtype_name)
        cot = tf.constant(cot32, dtype=dtype_name)
        for name, make in contenders.items():
            for xla in (False, True):
                layer = make(policy)
                layer(x)
                params[name] = sum(int(np.prod(w.shape)) for w in layer.weights)

                def fwd_bwd(x=x, cot=cot, layer=layer):
                    with tf.GradientTape() as tape:
                        tape.watch(x)
                        y = layer(x, training=True)  # as Keras' fit calls it
                    return tape.gradient(y, [x] + layer.trainable_weights, output_gradients=cot)

                fn = tf.function(fwd_bwd, jit_compile=xla)
                timed = lambda fn=fn: [g.numpy() for g in fn()]  # noqa: E731
                seconds = median_time(timed, args.warmup, args.repeats)
                results[(name, dtype_name, xla)] = seconds
                if name == "nmt.model.gru.GRU":
                    layer_fns[(dtype_name, xla)] = timed
                print(
                    f"  timed {name:30s} {dtype_name:8s} xla={xla!s:5s} {seconds * 1e3:8.2f} ms",
                    file=sys.stderr,
                    flush=True,
                )
    return results, matmul_gflops, params, layer_fns


def time_backward_passes(args):
    """The hand-written backward passes against TensorFlow's autodiff of the same forward loops, in
    this run (graph mode, float32): nmt.model.gru's recurrence (`_gru_recurrence`) against a tf.while_loop
    of the cell's step (`gru_cell_step`), and the Bahdanau decoder's teacher-forced recurrence
    (`AttentionDecoder.call`) against the same call with a tf.while_loop of `attention_gru_step` in
    place of `attention_gru_recurrence`, at the comparison size. Returns
    {name: (hand-written seconds, autodiff seconds)}."""
    from unittest import mock

    import keras
    import numpy as np
    import tensorflow as tf

    from nmt.model import bahdanau
    from nmt.model.gru import _gru_recurrence, gru_cell_step
    from nmt.model.seq2seq import ModelConfig, build_model

    rng = np.random.default_rng(1)
    B, T, H = args.batch, args.length, args.units
    xp = tf.constant(rng.normal(size=(T, B, 3 * H)).astype("float32"))
    h0 = tf.zeros([B, H])
    u = tf.Variable(0.05 * rng.normal(size=(H, 3 * H)).astype("float32"))
    cot = tf.constant(rng.normal(size=(T, B, H)).astype("float32"))

    def autodiff_gru(xp, h0, u):
        def body(t, h, hs):
            h = gru_cell_step(xp[t], h, u)
            return t + 1, h, hs.write(t, h)

        hs = tf.TensorArray(tf.float32, size=T)
        return tf.while_loop(lambda t, *_: t < T, body, (0, h0, hs))[2].stack()

    def gru_grads(autodiff):
        @tf.function
        def run():
            with tf.GradientTape() as tape:
                tape.watch(xp)
                states = (
                    autodiff_gru(xp, h0, u)
                    if autodiff
                    else _gru_recurrence(*tf.split(xp, 3, axis=-1), h0, None, u, None)[0]
                )
            return tape.gradient(states, [xp, u], output_gradients=cot)

        return run

    keras.utils.set_random_seed(0)
    model = build_model(ModelConfig(), 8000, 8000)  # the comparison size: decoder GRU 512, attention 512
    src = tf.constant(rng.integers(4, 8000, (B, T)).astype("int32"))
    tgt = tf.constant(rng.integers(4, 8000, (B, T)).astype("int32"))
    weights = model.decoder.trainable_weights

    def autodiff_decoder(projected, h0, memory, weights):  # the decoder's loop, differentiated by TensorFlow
        steps = tf.shape(projected)[0]
        inputs = tf.TensorArray(projected.dtype, size=steps, element_shape=projected.shape[1:]).unstack(projected)
        states = tf.TensorArray(h0.dtype, size=steps, element_shape=h0.shape)
        contexts = tf.TensorArray(memory["encoder_outputs"].dtype, size=steps)

        def body(t, hidden, states, contexts):
            hidden, context = bahdanau.attention_gru_step(inputs.read(t), hidden, memory, weights)[:2]
            return t + 1, hidden, states.write(t, hidden), contexts.write(t, context)

        loop = tf.while_loop(lambda t, *_: t < steps, body, (0, h0, states, contexts), maximum_iterations=steps)
        return loop[2].stack(), loop[3].stack()

    def decoder_grads(autodiff):
        recurrence = autodiff_decoder if autodiff else bahdanau.attention_gru_recurrence

        @tf.function
        def run():
            with mock.patch.object(bahdanau, "attention_gru_recurrence", recurrence), tf.GradientTape() as tape:
                logits = model.decoder.call(tgt, model.encode(src))
                loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(tgt, logits))
            return tape.gradient(loss, weights)

        return run

    out = {}
    for name, make in (("nmt.model.gru recurrence", gru_grads), ("Bahdanau decoder (teacher-forced)", decoder_grads)):
        times = []
        for autodiff in (False, True):
            fn = make(autodiff)
            times.append(median_time(lambda fn=fn: [tf.convert_to_tensor(g).numpy() for g in fn()], 2, args.repeats))
        out[name] = tuple(times)
        print(f"  timed backward passes of {name}", file=sys.stderr, flush=True)
    return out


def time_matmuls_alone(args):
    """The matmuls of one nmt.model.gru.GRU forward and backward pass and nothing else, at the layer's own
    shapes, in graph mode as `fit` runs them: per step h·U_r then (r⊙h)·U_h, beside h·U_z (each
    [B, H]x[H, H]) forward, and δh̃·U_hᵀ then δr·U_rᵀ, beside δz·U_zᵀ, backward, each chain waiting
    for the step before as in the recurrence; then the three gates' input projections x·W_g
    [T·B, E]x[E, H] and, over all T·B rows, their gradients dx and dW_g and one dU_g per gate.
    Returns {dtype: seconds}.

    Their float32/bfloat16 time ratio bounds the layer's bfloat16 speed-up, because the layer's
    other work (element-wise gates, loop) is the same in both: under mixed_bfloat16 nmt.model.gru keeps
    the state and the gates in float32 and casts only the matmul operands."""
    import numpy as np
    import tensorflow as tf

    B, T, E, H = args.batch, args.length, args.input, args.units
    rng = np.random.default_rng(2)
    out = {}
    for dtype in args.dtypes:

        def const(*shape, dtype=dtype):
            return tf.constant(0.04 * rng.normal(size=shape).astype("float32"), dtype)

        u_z, u_r, u_h, h0 = const(H, H), const(H, H), const(H, H), const(B, H)
        x_rows, h_rows = const(T * B, E), const(T * B, H)
        w_gates = [const(E, H) for _ in range(3)]  # W_z, W_r, W_h
        d_gates = [const(T * B, H) for _ in range(3)]  # δz, δr, δh̃ rows

        def forward(t, h, side, u_z=u_z, u_r=u_r, u_h=u_h):
            r = tf.matmul(h, u_r)  # [B, H]
            return t + 1, tf.matmul(r, u_h), tf.matmul(h, u_z)  # (r⊙h)·U_h; h·U_z beside it

        def backward(t, d, side, u_z=u_z, u_r=u_r, u_h=u_h):
            d_rh = tf.matmul(d, u_h, transpose_b=True)  # δh̃·U_hᵀ [B, H]
            return t + 1, tf.matmul(d_rh, u_r, transpose_b=True), tf.matmul(d, u_z, transpose_b=True)

        @tf.function(autograph=False)
        def run(h0=h0, x_rows=x_rows, h_rows=h_rows, w_gates=w_gates, d_gates=d_gates):
            _, h, h_side = tf.while_loop(lambda t, *_: t < T, forward, (0, h0, h0))
            _, d, d_side = tf.while_loop(lambda t, *_: t < T, backward, (0, h, h))
            xp = [tf.matmul(x_rows, w) for w in w_gates]  # [T·B, H] per gate
            dx = tf.add_n([tf.matmul(g, w, transpose_b=True) for g, w in zip(d_gates, w_gates)])  # [T·B, E]
            dw = [tf.matmul(x_rows, g, transpose_a=True) for g in d_gates]  # [E, H] per gate
            du = [tf.matmul(h_rows, g, transpose_a=True) for g in d_gates]  # [H, H] per gate
            return [h_side, d, d_side, dx] + xp + dw + du

        out[dtype] = median_time(lambda run=run: [t.numpy() for t in run()], args.warmup, args.repeats)
        print(f"  timed the GRU's matmuls alone, {dtype}", file=sys.stderr, flush=True)
    return out


def bf16_instructions():
    """The processor's bfloat16 instruction sets, from /proc/cpuinfo (Linux; None elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return None
    return [name for name in ("avx512_bf16", "amx_bf16", "avx_ne_convert") if name in flags]


def print_gru_against_lstm(args, tf_results, torch_result, params):
    """Each GRU and LSTM of the same input and width: parameters (counted from the weights) and time
    (forward + backward; TensorFlow layers at their best of graph and XLA), and LSTM / GRU ratios."""
    print(f"\nGRU against LSTM (input {args.input}, units {args.units}; forward+backward, best of graph and XLA):")
    header = f"  {'layer':30s} {'parameters':>11s}" + "".join(f" {dt + ' ms':>13s}" for dt in args.dtypes)
    print(header)
    table = {}
    for name in ("nmt.model.gru.GRU", "keras GRU(reset_after=True)", "keras LSTM"):
        table[name] = (params[name], {dt: min(tf_results[(name, dt, x)] for x in (False, True)) for dt in args.dtypes})
    if torch_result:
        table["torch.nn.GRU"] = (torch_result["params"]["torch.nn.GRU"], torch_result["times"])
        table["torch.nn.LSTM"] = (torch_result["params"]["torch.nn.LSTM"], torch_result["lstm_times"])
    for name, (count, times) in table.items():
        print(f"  {name:30s} {count:11,d}" + "".join(f" {times[dt] * 1e3:13.2f}" for dt in args.dtypes))
    pairs = [("keras LSTM", "nmt.model.gru.GRU"), ("keras LSTM", "keras GRU(reset_after=True)")]
    if torch_result:
        pairs.append(("torch.nn.LSTM", "torch.nn.GRU"))
    for lstm, gru in pairs:
        times = ", ".join(f"{dt} {table[lstm][1][dt] / table[gru][1][dt]:.2f}x" for dt in args.dtypes)
        print(f"  {lstm} / {gru}: parameters {table[lstm][0] / table[gru][0]:.2f}x, time {times}")


def main(argv=None):
    args = parse_args(argv)
    if args.torch_worker:
        torch_worker(args)
        return 0
    if args.torch_server:
        torch_server(args)
        return 0
    torch_result, torch_note = time_torch(args)
    onednn_binary, onednn_note = build_onednn(args)
    onednn_result, onednn_diff = None, None
    if onednn_binary:
        onednn_result, onednn_note = time_onednn(args, onednn_binary)
    tf_results, matmul_gflops, params, layer_fns = time_tf(args)
    if onednn_binary:
        if onednn_result:
            onednn_diff = check_onednn(args, onednn_binary)
        shutil.rmtree(os.path.dirname(onednn_binary), ignore_errors=True)
        if onednn_result and onednn_diff is None:
            onednn_result, onednn_note = None, "failed (its float32 forward on bench_gru.py's inputs did not run)"
    B, T, E, H = args.batch, args.length, args.input, args.units
    flops = 2 * B * T * 3 * H * (3 * E + 3 * H)
    gflops = lambda s: flops / s / 1e9

    print(
        f"\nGRU forward+backward, batch {B}, length {T}, input {E}, units {H}; "
        f"median of {args.repeats} after {args.warmup} warm-up runs"
    )
    print(f"{flops / 1e9:.2f} GFLOP per run; 2048^3 float32 matmul: {matmul_gflops['float32']:.1f} GFLOP/s")
    if "bfloat16" in matmul_gflops:
        print(f"2048^3 bfloat16 matmul (best of graph and XLA): {matmul_gflops['bfloat16']:.1f} GFLOP/s")
    print()
    print(f"{'contender':32s} {'dtype':9s} {'mode':6s} {'ms':>9s} {'GFLOP/s':>9s} {'% matmul':>9s}")
    rows = [((name, dt, xla), s) for (name, dt, xla), s in tf_results.items()]
    if torch_result:
        rows += [(("torch.nn.GRU", dt, None), s) for dt, s in torch_result["times"].items()]
    for (name, dt, xla), s in rows:
        mode = "torch" if xla is None else ("xla" if xla else "graph")
        print(
            f"{name:32s} {dt:9s} {mode:6s} {s * 1e3:9.2f} {gflops(s):9.1f} "
            f"{100 * gflops(s) / matmul_gflops['float32']:8.1f}%"
        )
    if torch_result:
        rows_lstm = [(("torch.nn.LSTM", dt, None), s) for dt, s in torch_result["lstm_times"].items()]
        for (name, dt, _), s in rows_lstm:
            print(f"{name:32s} {dt:9s} {'torch':6s} {s * 1e3:9.2f}")
    if onednn_result:
        for alg, label in (("vanilla_gru", "oneDNN vanilla_gru (fused)"), ("lbr_gru", "oneDNN lbr_gru (fused)")):
            for dt in args.dtypes:
                s = onednn_result["times"][alg][dt]
                print(
                    f"{label:32s} {dt:9s} {'onednn':6s} {s * 1e3:9.2f} {gflops(s):9.1f} "
                    f"{100 * gflops(s) / matmul_gflops['float32']:8.1f}%"
                )
    if torch_note:
        print(f"torch.nn.GRU: {torch_note}")
    if onednn_note:
        print(f"oneDNN GRU primitives: {onednn_note}")
    elif onednn_result:
        same = onednn_diff < 1e-4
        print(
            f"oneDNN {onednn_result['version']}: vanilla_gru is nmt.model.gru's GRU (reset gate before the recurrent "
            f"matmul) as one primitive per sequence, weights packed once; lbr_gru is torch.nn.GRU's variant. "
            f"vanilla_gru against nmt.model.gru.GRU on the same float32 inputs and weights: max |difference| "
            f"{onednn_diff:.1e} ({'the same function' if same else 'NOT the same function: its times do not compare'})"
        )

    print_gru_against_lstm(args, tf_results, torch_result, params)

    print(f"\nhand-written backward passes against autodiff of the same loop (float32 graph, batch {B}, length {T}):")
    for name, (hand, auto) in time_backward_passes(args).items():
        print(f"  {name:36s} hand-written {hand * 1e3:8.2f} ms, autodiff {auto * 1e3:8.2f} ms: {auto / hand:.2f}x")

    print("\nratios (time of nmt.model.gru.GRU at its best / time of the other; < 1 means faster):")
    for dt in args.dtypes:
        ours = min(tf_results[("nmt.model.gru.GRU", dt, x)] for x in (False, True))
        others = []
        if torch_result and dt in torch_result["times"]:
            others.append(("torch.nn.GRU", torch_result["times"][dt], 0.9))
        if onednn_result:
            others.append(("oneDNN vanilla_gru (fused)", onednn_result["times"]["vanilla_gru"][dt], None))
        others += [
            ("keras GRU(reset_after=False) graph", tf_results[("keras GRU(reset_after=False)", dt, False)], 0.6),
            ("keras GRU(reset_after=False) xla", tf_results[("keras GRU(reset_after=False)", dt, True)], 1.0),
            ("keras GRU(reset_after=True) graph", tf_results[("keras GRU(reset_after=True)", dt, False)], None),
            ("keras GRU(reset_after=True) xla", tf_results[("keras GRU(reset_after=True)", dt, True)], None),
        ]
        for label, t, target in others:
            verdict = ""
            if target is not None and dt == "float32":
                ok = ours / t <= target if target < 1 else ours < t
                verdict = f"  target {'<=' if target < 1 else '<'} {target:.1f}: {'met' if ok else 'NOT met'}"
            print(f"  {dt:9s} vs {label:38s} {ours / t:6.2f}x{verdict}")
    if "float32" in args.dtypes and "bfloat16" in args.dtypes:
        best = lambda dt: min(tf_results[("nmt.model.gru.GRU", dt, x)] for x in (False, True))
        print(
            f"\nin the table above (times taken minutes apart): nmt.model.gru.GRU bfloat16 "
            f"{best('float32') / best('bfloat16'):.2f}x faster than its float32"
            + (
                f", {best('bfloat16') / torch_result['times']['bfloat16']:.2f}x torch.nn.GRU bfloat16's time"
                if torch_result
                else ""
            )
        )
        rounds, rounds_note = interleaved_rounds(args, layer_fns, torch_result is not None)
        print(
            f"interleaved rounds (each a median of {args.repeats} timings; nmt.model.gru.GRU at its best of graph "
            "and XLA; the order reversed every other round):"
        )
        for i, r in enumerate(rounds, 1):
            line = f"  round {i}: float32 {r['float32'] * 1e3:.2f} ms, bfloat16 {r['bfloat16'] * 1e3:.2f} ms"
            line += f" ({r['float32'] / r['bfloat16']:.2f}x)"
            if "torch" in r:
                line += f", torch.nn.GRU bfloat16 {r['torch'] * 1e3:.2f} ms"
                line += f" ({r['bfloat16'] / r['torch']:.2f}x its time)"
            print(line)
        if rounds_note:
            print(f"  torch.nn.GRU left out of the rounds: {rounds_note}")

        def summary(ratios):
            spread = f"{min(ratios):.2f}x to {max(ratios):.2f}x"
            return f"median {statistics.median(ratios):.2f}x over {len(ratios)} rounds ({spread})"

        speedups = [r["float32"] / r["bfloat16"] for r in rounds]
        print(
            f"\nnmt.gru.GRU bfloat16 speed-up over float32: {summary(speedups)} "
            f"(target >= 1.6: {'met' if statistics.median(speedups) >= 1.6 else 'NOT met'})"
        )
        against_torch = [r["bfloat16"] / r["torch"] for r in rounds if "torch" in r]
        if against_torch:
            print(
                f"nmt.model.gru.GRU bfloat16 against torch.nn.GRU bfloat16: {summary(against_torch)} its time "
                f"(target <= 1.0: {'met' if statistics.median(against_torch) <= 1.0 else 'NOT met'})"
            )
        if onednn_result:
            fused = onednn_result["times"]["vanilla_gru"]
            print(
                f"  oneDNN's fused vanilla_gru (the same equations): float32 {fused['float32'] * 1e3:.2f} ms, "
                f"bfloat16 {fused['bfloat16'] * 1e3:.2f} ms = {fused['float32'] / fused['bfloat16']:.2f}x its float32, "
                f"{best('float32') / fused['bfloat16']:.2f}x nmt.model.gru.GRU's best float32"
                + (
                    f", {fused['bfloat16'] / torch_result['times']['bfloat16']:.2f}x torch.nn.GRU bfloat16's time"
                    if torch_result
                    else ""
                )
            )
        alone = time_matmuls_alone(args)
        print(
            f"  the layer's matmuls alone at its own shapes (graph): float32 {alone['float32'] * 1e3:.2f} ms "
            f"({100 * alone['float32'] / tf_results[('nmt.model.gru.GRU', 'float32', False)]:.0f} % of the float32 "
            f"graph layer), bfloat16 {alone['bfloat16'] * 1e3:.2f} ms "
            f"({100 * alone['bfloat16'] / tf_results[('nmt.model.gru.GRU', 'bfloat16', False)]:.0f} % of the bfloat16 "
            f"graph layer): the matmuls themselves run {alone['float32'] / alone['bfloat16']:.2f}x faster in "
            "bfloat16, the layer's bound: its element-wise gate work is float32 in both"
        )
        ceiling = matmul_gflops["bfloat16"] / gflops(best("float32"))
        instructions = bf16_instructions()
        hardware = (
            "unknown (no /proc/cpuinfo)"
            if instructions is None
            else ", ".join(instructions)
            if instructions
            else "none (bfloat16 is emulated)"
        )
        print(
            f"  hardware bound: bfloat16 matmul {matmul_gflops['bfloat16']:.1f} GFLOP/s / float32 GRU "
            f"{gflops(best('float32')):.1f} GFLOP/s = at most {ceiling:.2f}x on this machine; "
            f"CPU bfloat16 instructions: {hardware}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Translation speed (sentences per second) over Multi30k test2016, greedy and beam 5, side by side.

    python bench/bench_translate.py [--model RUN_DIR] [--data MULTI30K_DIR] [--batch-size 64]

Paths measured, each text -> text (tokenization, sorting, batches, search, detokenization):
  in-process   nmt.decode.translator.Translator (one tf.function per search setting), without and with XLA;
  SavedModel   the export of nmt.decode.translator.export_translator, reloaded with tf.saved_model.load and
               called through its serving_default signature with all sentences at once (the graph
               sorts them by length and cuts batches of --batch-size itself).
Every path first translates the whole set once (tracing, XLA compilation: reported as "warm-up"),
then the figure is the best of --repeats timed passes.

Without --model an UNTRAINED model of the comparison size is built (attention, embeddings 256,
bidirectional encoder GRU 256 per direction, decoder GRU 512, attention 512, maxout output 512,
an 8,000-piece joint SentencePiece model trained here on Multi30k train en+de). Its EOS logit is
pushed down (bias -1e4) and the output length fixed (max_len_a 0, max_len_b = the mean length of
the German test references in pieces + 1), so every sentence decodes as many steps as a trained
model would on average. A profile splits the beam-5 time into encoder, decoder steps alone (the
same number of steps on the same [B*K] rows, without search bookkeeping) and the rest (search).

Peers on the same kind of 2-core CPU: Joey NMT 2.3.0, about 25 sentences/s beam 5 and 108 greedy;
the TensorFlow NMT tutorial's Keras model, 109 greedy. Goal: beam 5 above 125 sentences/s.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PEERS = {
    ("Joey NMT 2.3.0", 5): 25.0,
    ("Joey NMT 2.3.0", 1): 108.0,
    ("TF tutorial (Keras)", 1): 109.0,
}
GOAL_BEAM5 = 125.0


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--model", help="run directory (config.yaml, tokenizer/, model.keras); default: untrained comparison model"
    )
    default_data = os.environ.get("NMT_MULTI30K_DIR", str(ROOT.parent / "shared" / "data" / "multi30k"))
    p.add_argument(
        "--data", default=default_data, help=f"Multi30k directory with test2016.<src> (default {default_data})"
    )
    p.add_argument("--src-lang", default="en")
    p.add_argument("--tgt-lang", default="de")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--sentences", type=int, default=None, help="use only the first N test sentences")
    p.add_argument("--repeats", type=int, default=2, help="timed passes per path (best is reported)")
    p.add_argument("--beams", default="1,5", help="comma-separated beam sizes (default 1,5)")
    p.add_argument("--no-xla", action="store_true", help="skip the XLA in-process path")
    p.add_argument("--no-savedmodel", action="store_true", help="skip the SavedModel path")
    p.add_argument("--no-profile", action="store_true", help="skip the beam-5 time breakdown")
    args = p.parse_args(argv)
    if args.batch_size < 1 or args.repeats < 1 or (args.sentences is not None and args.sentences < 1):
        p.error("--batch-size, --repeats and --sentences must be positive")
    args.beams = [int(b) for b in args.beams.split(",") if b.strip()]
    return args


def read_lines(path: Path, convention) -> list[str]:
    """A test file's lines through nmt.text.textfile: sources as translate.py reads its input (textfile.CRLF),
    references as scoring reads them (textfile.SACREBLEU)."""
    if not path.is_file():
        sys.exit(f"error: {path}: not found (give --data or set NMT_MULTI30K_DIR to the Multi30k directory)")
    from nmt.text import textfile

    return list(textfile.read_lines(path, convention))


def comparison_translator(args, sources, references):
    """The untrained comparison-size model with fixed output length; returns (translator, description)."""
    import numpy as np

    from nmt.config import DecodeConfig
    from nmt.decode.translator import Translator
    from nmt.model.seq2seq import ModelConfig, build_model
    from nmt.text.tokenizer import EOS_ID, TokenizerConfig, Tokenizers, train_tokenizers

    data = Path(args.data)
    tok_dir = Path(tempfile.mkdtemp(prefix="bench_translate_tok_"))
    start = time.perf_counter()
    train_tokenizers(
        TokenizerConfig(vocab_size=8000, joint=True),
        data / f"train.{args.src_lang}",
        data / f"train.{args.tgt_lang}",
        tok_dir,
    )
    tokenizers = Tokenizers.load(tok_dir)
    print(
        f"trained the joint 8,000-piece SentencePiece model on Multi30k train {args.src_lang}+{args.tgt_lang} "
        f"in {time.perf_counter() - start:.0f} s",
        flush=True,
    )
    model = build_model(ModelConfig(architecture="attention"), tokenizers.src.vocab_size, tokenizers.tgt.vocab_size)
    bias = model.decoder.projection.bias
    values = np.array(bias.numpy())
    values[EOS_ID] = -1e4
    bias.assign(values)
    ref_lengths = [len(ids) for ids in tokenizers.tgt.encode_batch(references)]
    length = int(round(float(np.mean(ref_lengths)))) + 1  # + EOS
    decode = DecodeConfig(beam_size=5, length_penalty=0.6, max_len_a=0.0, max_len_b=length, batch_size=args.batch_size)
    description = (
        "UNTRAINED comparison model: attention, emb 256, biGRU 256+256, decoder GRU 512, vocab "
        f"{tokenizers.tgt.vocab_size}, "
        f"{model.count_params():,} parameters; EOS blocked, output length fixed at {length} steps "
        f"(mean reference length {np.mean(ref_lengths):.1f} pieces + EOS)"
    )
    return Translator(model, tokenizers, decode), description


def best_time(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(label, fn, n, repeats, results):
    start = time.perf_counter()
    fn()
    warmup = time.perf_counter() - start
    seconds = best_time(fn, repeats)
    results[label] = n / seconds
    print(
        f"  {label:<34} {n / seconds:8.1f} sentences/s  ({seconds:6.2f} s per pass; warm-up {warmup:5.1f} s)",
        flush=True,
    )
    return seconds


def id_batches(translator, sources, batch_size):
    """The sources as the translation graph batches them: int32[B, S] id tensors, sorted by length."""
    import tensorflow as tf

    from nmt.decode.graph import plan_batches

    ragged = translator.tokenizers.src.tf_tokenize(tf.constant(sources))
    order, bounds = (x.numpy() for x in plan_batches(ragged.row_lengths(), batch_size))
    return [
        tf.constant(tf.gather(ragged, order[bounds[p] : bounds[p + 1]]).to_tensor().numpy(), tf.int32)
        for p in range(len(bounds) - 1)
        if bounds[p + 1] > bounds[p]
    ]


def profile_beam(translator, sources, beam_size, batch_size, repeats):
    """Seconds per pass for: the encoder; encoder + decoder steps without search (same steps, [B*K] rows);
    the whole beam search (ids -> ids), all on the translator's sorted batches."""
    import numpy as np
    import tensorflow as tf

    from nmt.decode.search import output_length_limits, tile_beams
    from nmt.text.tokenizer import BOS_ID

    d = translator.decode
    batches = id_batches(translator, sources, batch_size)
    model = translator.model
    spec = [tf.TensorSpec([None, None], tf.int32)]

    @tf.function(input_signature=spec)
    def encode_only(ids):
        return tf.nest.flatten(model.encode(ids))[0]

    @tf.function(input_signature=spec)
    def steps_only(ids):
        limits, buffer_length = output_length_limits(ids, d.max_len_a, d.max_len_b)
        steps = tf.reduce_max(limits)
        state = tile_beams(model.encode(ids), beam_size)
        tokens = tf.fill([tf.shape(ids)[0] * beam_size], BOS_ID)

        def body(t, tokens, recurrent):
            log_probs, new_state, _ = model.decode_step(tokens, {"memory": state["memory"], "recurrent": recurrent})
            return t + 1, tf.argmax(log_probs, axis=-1, output_type=tf.int32), new_state["recurrent"]

        _, tokens, _ = tf.while_loop(lambda t, *_: t < steps, body, (0, tokens, state["recurrent"]))
        return tokens

    search = translator.graph.search_function(translator.settings(beam_size, 1, d.length_penalty))
    out = {}
    for name, fn in (("encoder", encode_only), ("encoder + decoder steps", steps_only), ("whole beam search", search)):
        for ids in batches:  # trace / warm up
            fn(ids)
        out[name] = best_time(lambda: [np.asarray(tf.nest.flatten(fn(ids))[0]) for ids in batches], repeats)
    return out


def main(argv=None):
    args = parse_args(argv)
    data = Path(args.data)
    from nmt.text import textfile

    sources = read_lines(data / f"test2016.{args.src_lang}", textfile.CRLF)
    references = read_lines(data / f"test2016.{args.tgt_lang}", textfile.SACREBLEU)
    if args.sentences:
        sources, references = sources[: args.sentences], references[: args.sentences]
    n = len(sources)

    import tensorflow as tf

    from nmt.decode.translator import Translator, export_translator, load_run

    print(
        f"TensorFlow {tf.__version__}, {os.cpu_count()} CPU cores, intra-op threads "
        f"{tf.config.threading.get_intra_op_parallelism_threads() or 'default'}"
    )
    if args.model:
        base = load_run(args.model)
        description = f"trained model {args.model} ({base.architecture}, {base.model.count_params():,} parameters)"
        base.decode = dataclasses.replace(base.decode, batch_size=args.batch_size, nbest=1)
    else:
        base, description = comparison_translator(args, sources, references)
    print(description)
    print(
        f"{n} sentences of {data / f'test2016.{args.src_lang}'}, batch size {args.batch_size}, "
        f"length penalty {base.decode.length_penalty}, max_len_a {base.decode.max_len_a}, max_len_b "
        f"{base.decode.max_len_b}\n"
    )

    results = {}
    xla = None if args.no_xla else Translator(base.model, base.tokenizers, base.decode, jit_compile=True)
    for beam in args.beams:
        print(f"beam {beam}" + (" (greedy search)" if beam == 1 else ""))
        settings = base.settings(beam_size=beam, nbest=1)
        measure(f"in-process, beam {beam}", lambda: base.translate(sources, settings), n, args.repeats, results)
        if xla is not None:
            measure(f"in-process XLA, beam {beam}", lambda: xla.translate(sources, settings), n, args.repeats, results)
        if not args.no_savedmodel:
            decode = dataclasses.replace(base.decode, beam_size=beam, nbest=1)
            with tempfile.TemporaryDirectory(prefix="bench_translate_export_") as tmp:
                export_translator(Translator(base.model, base.tokenizers, decode), Path(tmp) / "export")
                serve = tf.saved_model.load(str(Path(tmp) / "export")).signatures["serving_default"]
                batch = tf.constant(sources)
                measure(
                    f"SavedModel serving_default, beam {beam}",
                    lambda: serve(sentences=batch)["translations"].numpy(),
                    n,
                    args.repeats,
                    results,
                )
        print()

    print("ratios to peers (same kind of 2-core CPU, their published figures):")
    for (peer, beam), figure in PEERS.items():
        ours = [(label, value) for label, value in results.items() if label.endswith(f"beam {beam}")]
        for label, value in ours:
            print(f"  {label:<40} / {peer} beam {beam} ({figure:.0f}/s) = {value / figure:5.2f}x")
    beam5 = {label: value for label, value in results.items() if label.endswith("beam 5")}
    if beam5:
        best_label, best = max(beam5.items(), key=lambda kv: kv[1])
        verdict = "reached" if best > GOAL_BEAM5 else "NOT reached"
        print(f"\ngoal beam 5 > {GOAL_BEAM5:.0f} sentences/s: {verdict} (best: {best_label}, {best:.1f}/s)")

    if not args.no_profile and 5 in args.beams:
        print("\nwhere the beam-5 time goes (ids -> ids, no tokenization; seconds per pass, best of repeats):")
        parts = profile_beam(base, sources, 5, args.batch_size, args.repeats)
        total = parts["whole beam search"]
        encoder = parts["encoder"]
        steps = parts["encoder + decoder steps"] - encoder
        rest = total - parts["encoder + decoder steps"]
        for name, value in (
            ("encoder", encoder),
            ("decoder steps (model.decode_step)", steps),
            ("search bookkeeping (nmt.decode.search)", rest),
        ):
            print(f"  {name:<36} {value:6.2f} s  {100 * value / total:5.1f}%")
        print(f"  {'whole beam search':<36} {total:6.2f} s  ({n / total:.1f} sentences/s without text processing)")


if __name__ == "__main__":
    main()

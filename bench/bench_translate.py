#!/usr/bin/env python
"""Translation speed (sentences per second) over Multi30k test2016, greedy and beam 5, side by side.

    python bench/bench_translate.py [--model RUN_DIR] [--data MULTI30K_DIR] [--batch-size 64]

Paths measured, each text -> text (tokenization, sorting, batches, search, detokenization):
  float32 whole vocabulary   the reference: the same model copied with float32 variables, every step
               scoring the whole target vocabulary (how decoding ran before bfloat16 decoding and the
               lexical shortlist);
  in-process   translate.py's default path: nmt.decode.translator.load_run's Translator (the precision
               `for_decoding` picks for this CPU, the run's shortlist), without and with XLA;
  SavedModel   the export of nmt.decode.translator.export_translator, reloaded with tf.saved_model.load and
               called through its serving_default signature with all sentences at once (the graph
               sorts them by length and cuts batches of --batch-size itself).
Every path first translates the whole set once (tracing, XLA compilation: reported as "warm-up"),
then the figure is the best of --repeats timed passes. With --model, the test2016 BLEU of the reference
and of the default path are printed side by side, and the speed ratio of the two.

Without --model an UNTRAINED model of the comparison size is built (attention, embeddings 256,
bidirectional encoder GRU 256 per direction, decoder GRU 512, attention 512, maxout output 512,
an 8,000-piece joint SentencePiece model and a shortlist table trained here on Multi30k train). Its
EOS logit is pushed down (bias -1e4) and the output length fixed (max_len_a 0, max_len_b = the mean
length of the test references in pieces + 1), so every sentence decodes as many steps as a trained
model would on average.

The FLOP count: TensorFlow's profiler counts the floating-point operations of the encoder (per source
token) and of one decoder step (per beam row, with the whole vocabulary and with the shortlist's mean
width); a sentence needs at least |x| encoder tokens and K x |y| decoder rows (|y|: its translation's
pieces + EOS). The bound it implies: the CPU's measured throughput on the output projection's matmul
divided by the FLOPs per sentence.

Peers on the same kind of 2-core CPU: Joey NMT 2.3.0, about 25 sentences/s beam 5 and 108 greedy;
the TensorFlow NMT tutorial's Keras model, 109 greedy. Goals on a CPU with bfloat16 instructions: beam 5 at
least 250 sentences/s and greedy at least 700 on the default path; elsewhere at least 1.5x the float32
reference; test BLEU within 0.2 of the float32 reference.
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
GOALS = {5: 250.0, 1: 700.0}  # sentences/s on a CPU with bfloat16 instructions
GOAL_RATIO = 1.5  # the default path over the float32 reference, on a CPU without them
REFERENCE = "float32 whole vocabulary"


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
    p.add_argument("--no-flops", action="store_true", help="skip the FLOP count")
    p.add_argument(
        "--decode-dtype",
        choices=("auto", "float32"),
        default="auto",
        help="the default path's precision: auto (what this CPU gets) or float32 (what a CPU without bfloat16 "
        "instructions gets: the shortlist and compaction alone)",
    )
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
    from nmt.decode import shortlist
    from nmt.decode.translator import Translator
    from nmt.model.seq2seq import ModelConfig, build_model
    from nmt.text import textfile
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
    train_src = read_lines(data / f"train.{args.src_lang}", textfile.TENSORFLOW)
    train_tgt = read_lines(data / f"train.{args.tgt_lang}", textfile.TENSORFLOW)
    table, _ = shortlist.estimate(zip(train_src, train_tgt), tokenizers)
    description = (
        "UNTRAINED comparison model: attention, emb 256, biGRU 256+256, decoder GRU 512, vocab "
        f"{tokenizers.tgt.vocab_size}, "
        f"{model.count_params():,} parameters; EOS blocked, output length fixed at {length} steps "
        f"(mean reference length {np.mean(ref_lengths):.1f} pieces + EOS)"
    )
    return Translator(model, tokenizers, decode, shortlist=table), description


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


def float32_reference(base):
    """The default path's model copied with float32 variables, scoring the whole vocabulary."""
    from nmt.decode.translator import Translator
    from nmt.model import precision

    return Translator(precision.with_policy(base.model, "float32"), base.tokenizers, base.decode)


def bleu(hypotheses, references) -> float:
    import sacrebleu

    return sacrebleu.corpus_bleu(hypotheses, [references]).score


def count_flops(fn, *specs) -> int:
    """Floating-point operations of fn traced on these static shapes (TensorFlow's profiler)."""
    import tensorflow as tf

    graph = tf.function(fn, autograph=False).get_concrete_function(*specs).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return int(tf.compat.v1.profiler.profile(graph=graph, options=options).total_float_ops)


def matmul_throughput(rows, units, columns, dtype, repeats=50) -> float:
    """FLOP/s of [rows, units] x [units, columns] in dtype on this CPU (best of repeats)."""
    import tensorflow as tf

    a = tf.cast(tf.random.normal([rows, units]), dtype)
    b = tf.cast(tf.random.normal([units, columns]), dtype)
    product = tf.function(lambda a, b: tf.matmul(a, b))
    product(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        product(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2.0 * rows * units * columns / best


def flop_count(translator, sources, translations, beam_size, batch_size):
    """Prints the FLOPs per sentence of beam search with beam_size (whole vocabulary and shortlist) and the
    bound they imply on this CPU."""
    import numpy as np
    import tensorflow as tf

    from nmt.decode.search import tile_beams
    from nmt.decode.shortlist import batch_vocabulary

    model = translator.model
    batches = id_batches(translator, sources, batch_size)
    ids = batches[len(batches) // 2]
    rows, width = int(ids.shape[0]), int(ids.shape[1])
    encoder = count_flops(model.encode, tf.TensorSpec(ids.shape, tf.int32)) / (rows * width)
    state = tile_beams(model.encode(ids), beam_size)
    specs = tf.nest.map_structure(lambda x: tf.TensorSpec(x.shape, x.dtype), state)
    tokens = tf.TensorSpec([rows * beam_size], tf.int32)
    full = count_flops(lambda t, s: model.decode_step(t, s)[0], tokens, specs) / (rows * beam_size)
    source_tokens = float(np.mean([len(x) for x in translator.tokenizers.src.encode_batch(sources)]))
    output_tokens = float(np.mean([len(t.hypotheses[0].tokens) + 1 for t in translations]))
    per_sentence = {"whole vocabulary": source_tokens * encoder + beam_size * output_tokens * full}
    vocab = model.tgt_vocab_size
    table, settings = translator.shortlist, translator.settings(beam_size=beam_size)
    if table is not None and settings.shortlist:
        translations_table = tf.constant(table.translations[:, : settings.shortlist])
        frequent = tf.constant(table.frequent[: settings.shortlist_frequent])
        widths = [
            int(
                tf.size(
                    batch_vocabulary(translations_table, frequent, b, settings.shortlist, settings.shortlist_frequent)
                )
            )
            for b in batches
        ]
        vocab = int(round(float(np.mean(widths))))
        shortlist_specs = dict(specs, output=model.output_weights(tf.range(vocab)))
        shortlist_specs = tf.nest.map_structure(lambda x: tf.TensorSpec(x.shape, x.dtype), shortlist_specs)
        step = count_flops(lambda t, s: model.decode_step(t, s)[0], tokens, shortlist_specs) / (rows * beam_size)
        per_sentence[f"shortlist (mean width {vocab:,} of {model.tgt_vocab_size:,})"] = (
            source_tokens * encoder + beam_size * output_tokens * step
        )
    dtype = model.dtype_policy.compute_dtype
    readout = model.decoder.readout_dim
    rows_k = rows * beam_size
    print(
        f"\nFLOPs, beam {beam_size} (TensorFlow's profiler; mean |x| {source_tokens:.1f} source pieces, |y| "
        f"{output_tokens:.1f} output pieces + EOS): encoder {encoder / 1e6:.2f} MFLOP per source piece, decoder "
        f"step {full / 1e6:.2f} MFLOP per beam row with the whole vocabulary"
    )
    # The bound: every FLOP at the rate of the step's largest matmul, the output projection (the whole
    # vocabulary's in the compute dtype; a shortlist's in float32, `Decoder.output_weights`).
    for (name, flops), (width, projection_dtype) in zip(
        per_sentence.items(), [(model.tgt_vocab_size, dtype), (vocab, "float32")]
    ):
        rate = matmul_throughput(rows_k, readout, width, tf.as_dtype(projection_dtype))
        print(
            f"  {name:<44} {flops / 1e6:8.1f} MFLOP per sentence (at least); at the rate of its output projection "
            f"([{rows_k}, {readout}] x [{readout}, {width:,}], {projection_dtype}: {rate / 1e9:.0f} GFLOP/s) "
            f"the bound is {rate / flops:7.1f} sentences/s"
        )


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
    from nmt.model.precision import cpu_bf16_flags

    flags = cpu_bf16_flags()
    print(
        f"TensorFlow {tf.__version__}, {os.cpu_count()} CPU cores, intra-op threads "
        f"{tf.config.threading.get_intra_op_parallelism_threads() or 'default'}, bfloat16 instructions: "
        f"{', '.join(flags) if flags else 'none'}"
    )
    if args.model:
        base = load_run(args.model)
        description = f"trained model {args.model} ({base.architecture}, {base.model.count_params():,} parameters)"
        base.decode = dataclasses.replace(base.decode, batch_size=args.batch_size, nbest=1)
    else:
        base, description = comparison_translator(args, sources, references)
    if args.decode_dtype == "float32":
        from nmt.model.precision import with_policy

        model = with_policy(base.model, "float32")
        base = Translator(model, base.tokenizers, base.decode, shortlist=base.shortlist)
        description += "; --decode-dtype float32: the default path decodes in float32"
    print(description)
    settings0 = base.settings()
    print(
        f"{n} sentences of {data / f'test2016.{args.src_lang}'}, batch size {args.batch_size}, "
        f"length penalty {base.decode.length_penalty}, max_len_a {base.decode.max_len_a}, max_len_b "
        f"{base.decode.max_len_b}; default path: {base.model.dtype_policy.name}, shortlist "
        + (
            f"{settings0.shortlist} per source piece + {settings0.shortlist_frequent} frequent"
            if base.shortlist is not None and settings0.shortlist
            else "none"
        )
        + "\n"
    )

    results, outputs = {}, {}
    reference = float32_reference(base)
    xla = None if args.no_xla else Translator(base.model, base.tokenizers, base.decode, jit_compile=True)
    for beam in args.beams:
        print(f"beam {beam}" + (" (greedy search)" if beam == 1 else ""))
        settings = base.settings(beam_size=beam, nbest=1)
        for label, translator in ((REFERENCE, reference), ("in-process", base)):

            def run(translator=translator, label=label):
                outputs[label, beam] = translator.translate(sources, settings)

            measure(f"{label}, beam {beam}", run, n, args.repeats, results)
        if xla is not None:
            measure(f"in-process XLA, beam {beam}", lambda: xla.translate(sources, settings), n, args.repeats, results)
        if not args.no_savedmodel:
            decode = dataclasses.replace(base.decode, beam_size=beam, nbest=1)
            with tempfile.TemporaryDirectory(prefix="bench_translate_export_") as tmp:
                export_translator(
                    Translator(base.model, base.tokenizers, decode, shortlist=base.shortlist), Path(tmp) / "export"
                )
                serve = tf.saved_model.load(str(Path(tmp) / "export")).signatures["serving_default"]
                batch = tf.constant(sources)
                measure(
                    f"SavedModel serving_default, beam {beam}",
                    lambda: serve(sentences=batch)["translations"].numpy(),
                    n,
                    args.repeats,
                    results,
                )
        ratio = results[f"in-process, beam {beam}"] / results[f"{REFERENCE}, beam {beam}"]
        print(f"  in-process / {REFERENCE}: {ratio:.2f}x")
        if args.model:
            ref_bleu = bleu([t.text for t in outputs[REFERENCE, beam]], references)
            ours = bleu([t.text for t in outputs["in-process", beam]], references)
            print(f"  test BLEU: {REFERENCE} {ref_bleu:.2f}, in-process {ours:.2f} ({ours - ref_bleu:+.2f})")
        print()

    print("ratios to peers (same kind of 2-core CPU, their published figures):")
    for (peer, beam), figure in PEERS.items():
        ours = [(label, value) for label, value in results.items() if label.endswith(f"beam {beam}")]
        for label, value in ours:
            print(f"  {label:<40} / {peer} beam {beam} ({figure:.0f}/s) = {value / figure:5.2f}x")
    print()
    for beam in args.beams:
        ratio = results[f"in-process, beam {beam}"] / results[f"{REFERENCE}, beam {beam}"]
        if flags and args.decode_dtype == "auto" and beam in GOALS:
            for label in (f"in-process, beam {beam}", f"SavedModel serving_default, beam {beam}"):
                if label in results:
                    verdict = "reached" if results[label] >= GOALS[beam] else "NOT reached"
                    print(f"goal {label} >= {GOALS[beam]:.0f} sentences/s: {verdict} ({results[label]:.1f}/s)")
        else:
            verdict = "reached" if ratio >= GOAL_RATIO else "NOT reached"
            print(f"goal beam {beam} >= {GOAL_RATIO}x {REFERENCE}: {verdict} ({ratio:.2f}x)")

    if not args.no_flops:
        for beam in args.beams:
            flop_count(base, sources, outputs["in-process", beam], beam, args.batch_size)


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Benchmark of the input pipeline: sentence pairs per second through tokenization and batching.

    python bench/bench_data.py                              # Multi30k train, en -> de
    python bench/bench_data.py --corpus DIR --src en --tgt fr --batch-tokens 8192 --epochs 3

The corpus directory comes from --corpus, else the environment variable NMT_MULTI30K_DIR, else
../shared/data/multi30k next to the repository (raw Multi30k Task 1: train.en, train.de, ...;
data/multi30k written by prepare_data.py works too). A SentencePiece model is trained first
(timed separately) unless --tokenizer-dir points at one.

Printed: the corpus check and filter pass (Python), then for each epoch through the tf.data
pipeline pairs/s and target tokens/s (non-padding target_out tokens, i.e. target words + EOS),
plus the padding share. The first epoch includes graph tracing.

``--train-steps N`` (default 40) also times N training steps of the comparison model
(configs/multi30k_attention.yaml) on the same batches and prints the step rate next to the
pipeline's batch rate, so the pipeline is seen never to starve training; 0 skips it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from nmt.errors import UserError  # noqa: E402


def default_corpus_dir() -> Path:
    return Path(os.environ.get("NMT_MULTI30K_DIR", str(REPO_ROOT.parent / "shared" / "data" / "multi30k")))


def train_step_rate(dataset, tokenizers, steps: int, warmup: int = 10) -> float:
    """Training steps per second of the comparison model (configs/multi30k_attention.yaml's
    model and optimizer, float32, no XLA) on batches from `dataset`, after `warmup` steps."""
    import keras

    from nmt import config
    from nmt.train.trainer import build_and_compile

    cfg = config.load(REPO_ROOT / "configs" / "multi30k_attention.yaml")
    model = build_and_compile(cfg, tokenizers)
    marks = []
    clock = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: marks.append(time.perf_counter()))
    model.fit(dataset.repeat(), epochs=1, steps_per_epoch=warmup + steps, callbacks=[clock], verbose=0, shuffle=False)
    return steps / (marks[-1] - marks[warmup - 1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--corpus",
        type=Path,
        default=None,
        help="corpus directory (default: $NMT_MULTI30K_DIR or ../shared/data/multi30k)",
    )
    p.add_argument("--src", default="en")
    p.add_argument("--tgt", default="de")
    p.add_argument(
        "--tokenizer-dir", type=Path, default=None, help="use this trained tokenizer instead of training one"
    )
    p.add_argument("--vocab-size", type=int, default=8000)
    p.add_argument("--model-type", default="unigram", choices=["unigram", "bpe"])
    p.add_argument("--batch-tokens", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--max-len", type=int, default=100)
    p.add_argument("--epochs", type=int, default=2, help="timed passes over the training split")
    p.add_argument(
        "--train-steps",
        type=int,
        default=40,
        help="also time this many training steps of the comparison model (0: skip)",
    )
    args = p.parse_args(argv)
    try:
        run(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def run(args: argparse.Namespace) -> None:
    import tensorflow as tf

    from nmt.text.corpus import Corpus, CorpusConfig
    from nmt.text.tokenizer import PAD_ID, TokenizerConfig, Tokenizers, train_tokenizers
    from nmt.train.batches import DataConfig, describe_plan, make_training_stream

    corpus_dir = args.corpus or default_corpus_dir()
    if not corpus_dir.is_dir():
        raise UserError(f"--corpus: directory not found: {corpus_dir} (set --corpus or NMT_MULTI30K_DIR)")
    print(f"tensorflow {tf.__version__}, {os.cpu_count()} CPU cores, corpus {corpus_dir} ({args.src} -> {args.tgt})")

    t = time.perf_counter()
    corpus = Corpus(CorpusConfig(dir=str(corpus_dir), src_lang=args.src, tgt_lang=args.tgt, max_len=args.max_len))
    n_train = len(corpus.train)
    print(f"corpus check (Python, UTF-8 + alignment): {n_train:,} train pairs in {time.perf_counter() - t:.2f} s")

    with tempfile.TemporaryDirectory() as tmp:
        tok_dir = args.tokenizer_dir
        if tok_dir is None:
            tok_dir = Path(tmp) / "tok"
            cfg = TokenizerConfig(model_type=args.model_type, vocab_size=args.vocab_size)
            t = time.perf_counter()
            train_tokenizers(cfg, corpus.train.sources(), corpus.train.targets(), tok_dir)
            print(
                f"tokenizer training ({args.model_type}, vocab {args.vocab_size}, joint): "
                f"{time.perf_counter() - t:.2f} s"
            )
        tokenizers = Tokenizers.load(tok_dir)

        t = time.perf_counter()
        train = corpus.filtered_train(tokenizers)
        dt = time.perf_counter() - t
        print(f"filter pass (Python sentencepiece, both sides): {train.summary.read / dt:,.0f} pairs/s ({dt:.2f} s)")
        print(train.summary.format())

        data_cfg = DataConfig(batch_tokens=args.batch_tokens, batch_size=args.batch_size)
        print(describe_plan(data_cfg, args.max_len))
        ds = make_training_stream(train, tokenizers, data_cfg, epochs=1)  # one pass, the first one's order

        # Count in the graph so the figure is the pipeline's, not Python's loop over batches.
        def counts(inputs, target_out):
            src, _ = inputs
            real = tf.reduce_sum(tf.cast(target_out != PAD_ID, tf.int64))
            return tf.stack([tf.shape(src, out_type=tf.int64)[0], real, tf.size(target_out, out_type=tf.int64), 1])

        for epoch in range(1, args.epochs + 1):
            t = time.perf_counter()
            total = ds.map(counts).reduce(tf.zeros([4], tf.int64), lambda a, x: a + x).numpy()
            dt = time.perf_counter() - t
            pairs, tokens, padded, batches = (int(x) for x in total)
            print(
                f"pipeline epoch {epoch}: {pairs / dt:,.0f} pairs/s, {tokens / dt:,.0f} target tokens/s "
                f"({pairs:,} pairs, {batches} batches, {dt:.2f} s, padding {1 - tokens / padded:.1%} of target "
                "positions)"
            )
            if pairs != train.summary.kept:
                raise UserError(
                    f"internal error: the pipeline gave {pairs} pairs, the filter kept {train.summary.kept}"
                )

        # What training iterates: the endless stream, each pass shuffled with its own seed.
        stream = make_training_stream(train, tokenizers, data_cfg).take(args.epochs * batches)
        t = time.perf_counter()
        total = stream.map(counts).reduce(tf.zeros([4], tf.int64), lambda a, x: a + x).numpy()
        stream_dt = time.perf_counter() - t
        print(
            f"training stream (make_training_stream), {args.epochs} pass(es): {int(total[0]) / stream_dt:,.0f} "
            "pairs/s, "
            f"{int(total[1]) / stream_dt:,.0f} target tokens/s ({stream_dt:.2f} s)"
        )
        if int(total[0]) != args.epochs * train.summary.kept:
            raise UserError(
                f"internal error: the stream gave {int(total[0])} pairs in {args.epochs} passes, "
                f"the filter kept {train.summary.kept} per pass"
            )

        # The training step rate side by side: the pipeline must deliver batches faster.
        if args.train_steps:
            rate = train_step_rate(ds, tokenizers, args.train_steps)
            batches_per_s = batches / dt
            print(
                f"training (comparison model, float32): {rate:.2f} steps/s vs pipeline {batches_per_s:.2f} batches/s "
                f"({batches_per_s / rate:.0f}x headroom)"
            )


if __name__ == "__main__":
    sys.exit(main())

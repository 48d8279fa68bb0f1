#!/usr/bin/env python
"""Training speed: target tokens per second and peak memory, float32 and bfloat16, with and
without XLA, for configs/multi30k_attention.yaml at the comparison size (embeddings 256,
bidirectional encoder GRU 256 per direction, decoder GRU 512, joint 8,000-piece SentencePiece
vocabulary, batches of 64 sentences) on Multi30k train.

    python bench/bench_train.py [--data DIR] [--steps 150] [--warmup 60]
    python bench/bench_train.py --run RUN_DIR       # a real train.py run against the bench

With --run, the bench measures the run's own config (its model, dropout, batching, resolved
precision and tokenizer) and compares it with the run's logs/steps.tsv, whose `seconds` column is
each real step's wall time: the real run's mean step time after the warm-up against the bench's
(the goal: within 10 %), and the fraction of the run's wall-clock time spent outside training
steps (dev BLEU, checkpoints, logging, epoch starts), from logs/train.csv's `minutes`.

Each variant runs in its own subprocess (so peak memory is its own) through the project's own
path: nmt.config -> nmt.text.corpus -> nmt.train.batches -> nmt.model.seq2seq -> Keras fit. The first --warmup steps
(tracing, XLA compilation of the bucket shapes) are not timed; the next --steps are. Target
tokens are the non-pad tokens of target_out in the timed batches. Peers measured on one of these
2-core machines (float32, batch 64, same vocabulary): Joey NMT 2.3.0 about 940 target tokens/s,
the TensorFlow NMT-with-attention tutorial's Keras model about 1,135; the goal is 2x the faster.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PEERS = {"Joey NMT 2.3.0": 940.0, "TF tutorial (Keras)": 1135.0}
GOAL = 2300.0  # target tokens/s: at least 2x the faster peer


def default_data_dir() -> Path:
    return Path(os.environ.get("NMT_MULTI30K_DIR", ROOT.parent / "shared" / "data" / "multi30k"))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="Multi30k directory with train.{de,en} (default: $NMT_MULTI30K_DIR or ../shared/data/multi30k)",
    )
    p.add_argument("--config", type=Path, default=ROOT / "configs" / "multi30k_attention.yaml")
    p.add_argument("--steps", type=int, default=150, help="timed training steps per variant")
    p.add_argument("--warmup", type=int, default=60, help="untimed steps first (tracing, XLA compiles)")
    p.add_argument("--variants", default="float32,float32+xla,mixed_bfloat16,mixed_bfloat16+xla")
    p.add_argument("--work-dir", type=Path, default=None, help="where the tokenizer is cached (default: a temp dir)")
    p.add_argument("--run", type=Path, default=None, help="a train.py run directory to compare with the bench")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.steps <= 0 or args.warmup < 0:
        p.error(f"--steps must be positive and --warmup >= 0; received {args.steps}, {args.warmup}")
    if args.run is not None and not (args.run / "config.yaml").is_file():
        p.error(f"--run {args.run}: not a run directory (no config.yaml)")
    return args


def run_precision(run: Path) -> tuple[str, bool]:
    """The Keras policy and XLA flag a run trained with (train.precision auto resolved here, as
    train.py resolves it on this machine)."""
    from nmt import config
    from nmt.model import precision

    cfg = config.load(run / "config.yaml")
    return precision.resolve(cfg.train.precision)[0], cfg.train.jit_compile


def real_run_steps(run: Path, warmup: int) -> dict:
    """From a run's logs: steps, wall time in steps (all, and after the first `warmup` steps of each
    process, which trace and compile), and the run's training wall time."""
    import csv

    with open(run / "logs" / "steps.tsv", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if r.get("seconds") not in (None, "", "nan")]
    if not rows:
        raise SystemExit(f"error: {run}/logs/steps.tsv has no `seconds` column (a run from before it was logged)")
    with open(run / "logs" / "train.csv", encoding="utf-8") as f:
        epochs = list(csv.DictReader(f))
    seconds = [float(r["seconds"]) for r in rows]
    steady = seconds[warmup:]
    return {
        "steps": len(seconds),
        "step_seconds": sum(seconds),
        "steady_ms_per_step": 1e3 * sum(steady) / max(1, len(steady)),
        "wall_seconds": 60.0 * float(epochs[-1]["minutes"]) if epochs else float("nan"),
    }


def report_run(args, bench: dict) -> None:
    real = real_run_steps(args.run, args.warmup)
    outside = 1.0 - real["step_seconds"] / real["wall_seconds"]
    ratio = real["steady_ms_per_step"] / bench["ms_per_step"]
    print(f"\nreal run {args.run}: {real['steps']:,} steps in {real['wall_seconds'] / 60:.1f} min of training")
    print(f"  time in training steps:  {real['step_seconds']:8.1f} s ({100 * (1 - outside):.1f} %)")
    print(f"  time outside steps:      {real['wall_seconds'] - real['step_seconds']:8.1f} s ({100 * outside:.1f} %)")
    print(
        f"  step time after {args.warmup} warm-up steps: real {real['steady_ms_per_step']:.1f} ms, "
        f"bench {bench['ms_per_step']:.1f} ms ({bench['variant']}): real/bench {ratio:.2f}x; "
        f"goal within 10 %: {'met' if abs(ratio - 1) <= 0.10 else 'NOT met'}"
    )


def load_setup(args, precision: str, xla: bool):
    """The config, corpus, tokenizers and training dataset of one variant."""
    from nmt import config
    from nmt.text.corpus import Corpus
    from nmt.text.tokenizer import META_FILE, Tokenizers, train_tokenizers

    data = args.data or default_data_dir()
    overrides = [
        f"corpus.dir={data}",
        "corpus.src_lang=de",
        "corpus.tgt_lang=en",
        f"train.precision={precision}",
        f"train.jit_compile={str(xla).lower()}",
    ]
    if args.run is None:  # the speed of the architecture; a --run is measured as it trained
        overrides += ["model.embedding_dropout=0.0", "model.output_dropout=0.0"]
    cfg = config.load(args.run / "config.yaml" if args.run else args.config, overrides)
    corpus = Corpus(cfg.corpus)
    tok_dir = args.run / "tokenizer" if args.run else args.work_dir / "tokenizer"
    if not (tok_dir / META_FILE).is_file():
        train_tokenizers(cfg.tokenizer, corpus.train.sources(), corpus.train.targets(), tok_dir)
    return cfg, corpus, Tokenizers.load(tok_dir)


def worker(args) -> None:
    """One variant, in its own process: prints a JSON line with the measurements."""
    precision, _, xla = args.worker.partition("+")
    import keras
    import tensorflow as tf

    from nmt.train.batches import make_training_stream
    from nmt.train.trainer import build_and_compile

    # Seed first: tf.random.set_seed after a tensorflow-text tokenizer exists drops its resource.
    keras.utils.set_random_seed(1234)
    keras.mixed_precision.set_global_policy(precision)
    cfg, corpus, tokenizers = load_setup(args, precision, xla == "xla")
    train = corpus.filtered_train(tokenizers)
    # The stream training uses: the same batches on every iteration, so the token counts below are
    # those of the batches fit trains on.
    ds = make_training_stream(train, tokenizers, cfg.data)
    model = build_and_compile(cfg, tokenizers)

    total = args.warmup + args.steps
    targets = [t for _, t in ds.take(total)]
    tokens = [int(tf.reduce_sum(tf.cast(t > 0, tf.int32))) for t in targets]
    sentences = [int(t.shape[0]) for t in targets]

    class Clock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.marks = []

        def on_train_batch_end(self, batch, logs=None):
            self.marks.append(time.perf_counter())

    clock = Clock()
    start = time.perf_counter()
    model.fit(ds, epochs=1, steps_per_epoch=total, callbacks=[clock], verbose=0, shuffle=False)
    marks = [start] + clock.marks
    timed = marks[-1] - marks[args.warmup]
    timed_tokens = sum(tokens[args.warmup :])
    print(
        json.dumps(
            {
                "variant": args.worker,
                "tokens_per_s": timed_tokens / timed,
                "sentences_per_s": sum(sentences[args.warmup :]) / timed,
                "ms_per_step": 1e3 * timed / args.steps,
                "warmup_s": marks[args.warmup] - start,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "params": model.count_params(),
                "vocab": tokenizers.tgt.vocab_size,
                "mean_target_tokens_per_batch": timed_tokens / args.steps,
            }
        )
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.work_dir is None:
        args.work_dir = Path(tempfile.mkdtemp(prefix="nmt-bench-train-"))
    args.work_dir.mkdir(parents=True, exist_ok=True)
    if args.worker:
        worker(args)
        return 0
    data = args.data or default_data_dir()
    if not (data / "train.de").is_file():
        print(f"error: {data}: no Multi30k train.de (use --data DIR or NMT_MULTI30K_DIR)", file=sys.stderr)
        return 2
    results = []
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if args.run is not None:
        policy, xla = run_precision(args.run)
        variants = [policy + ("+xla" if xla else "")]
        args.config = args.run / "config.yaml"
    for variant in variants:
        cmd = [
            sys.executable,
            __file__,
            "--worker",
            variant,
            "--data",
            str(data),
            "--config",
            str(args.config),
            "--steps",
            str(args.steps),
            "--warmup",
            str(args.warmup),
            "--work-dir",
            str(args.work_dir),
        ] + (["--run", str(args.run)] if args.run else [])
        print(f"running {variant} ...", file=sys.stderr, flush=True)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            print(f"{variant}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    if not results:
        return 1
    r0 = results[0]
    print(
        f"\ntraining speed, {args.config.name}: {r0['params']:,} parameters, vocabulary {r0['vocab']:,}, "
        f"batches of 64 sentences (~{r0['mean_target_tokens_per_batch']:.0f} target tokens); "
        f"{args.steps} timed steps after {args.warmup} warm-up steps"
    )
    print(f"{'variant':22s} {'tgt tok/s':>10s} {'sent/s':>8s} {'ms/step':>8s} {'warm-up s':>10s} {'peak RSS MB':>12s}")
    for r in results:
        print(
            f"{r['variant']:22s} {r['tokens_per_s']:10.0f} {r['sentences_per_s']:8.1f} {r['ms_per_step']:8.1f} "
            f"{r['warmup_s']:10.1f} {r['peak_rss_mb']:12.0f}"
        )
    print("\nratios to the peers (measured elsewhere on the same kind of 2-core machine, float32):")
    for r in results:
        parts = ", ".join(f"{r['tokens_per_s'] / v:.2f}x {k}" for k, v in PEERS.items())
        verdict = "met" if r["tokens_per_s"] >= GOAL else "NOT met"
        print(f"  {r['variant']:22s} {parts}; goal >= {GOAL:,.0f} tok/s: {verdict}")
    if args.run is not None:
        report_run(args, results[0])
    by = {r["variant"]: r for r in results}
    for xla in ("", "+xla"):
        a, b = by.get("float32" + xla), by.get("mixed_bfloat16" + xla)
        if a and b:
            print(f"  bfloat16/float32{xla}: {b['tokens_per_s'] / a['tokens_per_s']:.2f}x speed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Benchmark of corpus size: the same training command on Multi30k and on Multi30k's training set
repeated R times, side by side: seconds from the start to the end of the first training step, the
step rate after it, and the peak resident memory of the process.

    python bench/bench_corpus.py                         # Multi30k against 69 x its training set (2,001,000 pairs)
    python bench/bench_corpus.py --repeat 690 --only big --steps 200    # 20,010,000 pairs
    python bench/bench_corpus.py --set data.shuffle_block=50000          # any --set, given to both runs

Both runs are ``train.py --config configs/multi30k.yaml`` (or --config) with ``corpus.dir`` pointing at
the corpus and ``train.max_steps`` = --steps; nothing else changed. The corpora are written once into
--work (train.{de,en} repeated, dev and test as they are) and reused. The first step's end is when
train.py writes the first line of logs/steps.tsv (polled every 20 ms); the step rate is taken between
the first and the last step; the peak RSS is the process's ru_maxrss (os.wait4). Training still
exports and scores dev and test at the end (the same for both runs). Run it on an idle machine.

The Multi30k directory comes from --multi30k, else the environment variable NMT_MULTI30K_DIR, else
../shared/data/multi30k next to the repository (raw Multi30k: train, val, test2016; or a directory
prepared by scripts/prepare_data.py: train, dev, test).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from nmt.errors import ArgumentParser, UserError, fail  # noqa: E402

SPLITS = {"train": ("train",), "dev": ("dev", "val"), "test": ("test", "test2016")}


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--multi30k", type=Path, help="Multi30k directory (default: NMT_MULTI30K_DIR or ../shared/data)")
    p.add_argument("--src", default="de", help="source language suffix (default de)")
    p.add_argument("--tgt", default="en", help="target language suffix (default en)")
    p.add_argument("--repeat", type=int, default=69, help="copies of the training set in the big corpus (default 69)")
    p.add_argument("--steps", type=int, default=60, help="training steps of each run (default 60)")
    p.add_argument("--config", default=str(REPO_ROOT / "configs" / "multi30k.yaml"), help="the training config")
    p.add_argument("--work", type=Path, default=Path("/tmp/nmt_bench_corpus"), help="where corpora and runs go")
    p.add_argument("--only", choices=("base", "big"), help="run only one of the two")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V", help="for both runs")
    return p.parse_args(argv)


def find(directory: Path, split: str, lang: str) -> Path:
    for name in SPLITS[split]:
        path = directory / f"{name}.{lang}"
        if path.is_file():
            return path
    raise UserError(f"--multi30k {directory}: no {' or '.join(f'{n}.{lang}' for n in SPLITS[split])}")


def write_corpus(source: Path, target: Path, repeat: int, langs: tuple[str, str]) -> int:
    """target/{train,dev,test}.{src,tgt}: train repeated `repeat` times; -> training pairs. Reused when
    its line count says it is complete."""
    target.mkdir(parents=True, exist_ok=True)
    done = target / "COMPLETE"
    lines = sum(1 for _ in find(source, "train", langs[0]).open("rb"))
    if done.is_file() and done.read_text().strip() == str(lines * repeat):
        return lines * repeat
    for lang in langs:
        for split in ("dev", "test"):
            shutil.copyfile(find(source, split, lang), target / f"{split}.{lang}")
        data = find(source, "train", lang).read_bytes()
        if not data.endswith(b"\n"):
            data += b"\n"
        with (target / f"train.{lang}").open("wb") as out:
            for copy in range(repeat):
                out.write(data)
                print(f"\rwriting {target}/train.{lang}: {copy + 1}/{repeat}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
    done.write_text(f"{lines * repeat}\n")
    return lines * repeat


def run(name: str, corpus: Path, args) -> dict:
    run_dir = args.work / "runs" / name
    argv = [
        sys.executable,
        str(REPO_ROOT / "train.py"),
        "--config",
        args.config,
        "--run-dir",
        str(run_dir),
        "--overwrite",
        "--set",
        f"corpus.dir={corpus}",
        "--set",
        f"corpus.src_lang={args.src}",
        "--set",
        f"corpus.tgt_lang={args.tgt}",
        "--set",
        f"train.max_steps={args.steps}",
        "--set",
        "train.tensorboard=false",
    ]
    for override in args.overrides:
        argv += ["--set", override]
    steps_log = run_dir / "logs" / "steps.tsv"
    if steps_log.exists():
        steps_log.unlink()
    log = (args.work / f"{name}.log").open("w")
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    first = last = None
    rows = 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)  # its own rusage, ru_maxrss included
        if pid == proc.pid:
            break
        if steps_log.is_file():
            rows = max(0, sum(1 for line in steps_log.open() if line.strip()) - 1)
            now = time.perf_counter() - start
            if rows >= 1 and first is None:
                first = (now, rows)
            if rows >= args.steps and last is None:
                last = (now, rows)
        time.sleep(0.02)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    log.close()
    if proc.returncode != 0:
        raise UserError(f"{name}: train.py exited with status {proc.returncode}; see {args.work / (name + '.log')}")
    if first is None or last is None or last[1] <= first[1]:
        raise UserError(f"{name}: no training steps seen in {steps_log}; see {args.work / (name + '.log')}")
    return {
        "first_step_s": first[0],
        "steps_per_s": (last[1] - first[1]) / (last[0] - first[0]),
        "peak_rss_gb": usage.ru_maxrss / 1024**2,
        "wall_s": wall,
    }


def main(argv=None) -> int:
    try:
        args = parse_args(argv)
        source = args.multi30k or Path(
            os.environ.get("NMT_MULTI30K_DIR", str(REPO_ROOT.parent / "shared" / "data" / "multi30k"))
        )
        if not source.is_dir():
            raise UserError(f"--multi30k {source}: not a directory")
        langs = (args.src, args.tgt)
        results = {}
        for name, repeat in (("base", 1), ("big", args.repeat)):
            if args.only and name != args.only:
                continue
            pairs = write_corpus(source, args.work / f"corpus_x{repeat}", repeat, langs)
            print(f"{name}: {pairs:,} training pairs, {args.steps} steps ...", file=sys.stderr, flush=True)
            results[name] = dict(run(name, args.work / f"corpus_x{repeat}", args), pairs=pairs)
    except UserError as error:
        return fail(error)
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    print(f"CPU: {cpu}, {os.cpu_count()} cores; config {args.config}; overrides {args.overrides or 'none'}")
    print(f"{'corpus':<8} {'pairs':>12} {'first step s':>13} {'steps/s':>8} {'peak RSS GB':>12} {'wall s':>8}")
    for name, r in results.items():
        print(
            f"{name:<8} {r['pairs']:>12,} {r['first_step_s']:>13.1f} {r['steps_per_s']:>8.2f} "
            f"{r['peak_rss_gb']:>12.2f} {r['wall_s']:>8.0f}"
        )
    if len(results) == 2:
        base, big = results["base"], results["big"]
        print(
            f"big / base: first step {big['first_step_s'] / base['first_step_s']:.2f}x, "
            f"steps/s {big['steps_per_s'] / base['steps_per_s']:.2f}x, "
            f"peak RSS {big['peak_rss_gb'] / base['peak_rss_gb']:.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

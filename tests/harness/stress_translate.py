#!/usr/bin/env python
"""Line alignment under load: translate.py on many generated hostile lines, through a file and a pipe.

    python tests/harness/stress_translate.py --model runs/toy                  # 100,000 lines (and 10,000 for memory)
    python tests/harness/stress_translate.py --model runs/toy --lines 3000 --small-lines 300

The input is `--lines` lines drawn (seeded) from a set of templates: ordinary sentences, empty and
whitespace-only lines, lines of 1,000+ tokens, lines with a carriage return, NUL, U+2028, U+0085,
vertical tab, form feed and other control characters inside them (none of which ends a line: only LF
does), combining marks, right-to-left text and emoji; the last line has no newline.

Checks (exit status 1 when one fails):
  - translate.py --input FILE --output OUT and `cat FILE | translate.py`: exactly --lines output lines,
    and line i is the translation of input line i (each template translated alone, in process, is the
    oracle);
  - peak memory (the process's maximum resident set size) on --lines lines is within 20 % of that on
    --small-lines lines: memory does not grow with the input.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from nmt.errors import ArgumentParser  # noqa: E402

MAX_MEMORY_GROWTH = 1.20


def templates(sentences: list[str]) -> list[str]:
    """Hostile lines (no LF inside, no CR at the end: those end or close a line) and ordinary ones."""
    a, b, c = (sentences + ["one", "two", "three"])[:3]
    return sentences + [
        "",
        "   ",
        "\t \t",
        " ".join([a] * 300),  # well over 1,000 tokens: cut to decode.max_input_len with a warning
        "x" * 5000,  # one very long word
        f"{a}\r{b}",  # CR inside a line
        f"{b}\x00 {c}",  # NUL
        f"{a}\u2028{c}",  # LINE SEPARATOR: not a line break here
        f"{b}\x85{a}",  # NEXT LINE (U+0085)
        f"{c}\x0b{a}\x0c{b}\x1c{c}\x1d\x1e",  # VT, FF, FS, GS, RS: str.splitlines() would break here
        f"{a} z\u0301we\u0308i\u20dd",  # combining marks
        f"שלום {b} مرحبا \u202eevil\u202c",  # right-to-left text and a bidi override
        f"{c} 🐶🐶 👍🏽 🇩🇪 \U0010ffff",  # emoji, flags, a private-use plane code point
        f"{a}\x07\x1b[31m {b}\x7f\x01",  # terminal control characters
        "\ufeffbom at the start",
        "\u00a0\u3000",  # no-break and ideographic spaces only
    ]


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, metavar="RUN_DIR", help="a run directory written by train.py")
    p.add_argument("--lines", type=int, default=100_000, help="input lines (default 100,000)")
    p.add_argument("--small-lines", type=int, default=10_000, help="lines of the memory baseline run (default 10,000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--beam-size", type=int, default=1, help="beam size of all runs (default 1: greedy)")
    p.add_argument("--work-dir", help="where input and outputs go (default: a temporary directory, removed)")
    args = p.parse_args(argv)
    if args.lines < 1 or not 1 <= args.small_lines <= args.lines:
        p.error(f"expected 1 <= --small-lines <= --lines, got {args.small_lines} and {args.lines}")
    return args


def run_translate(args, argv: list, stdin=None, stdout=None) -> tuple[int, float, float, bytes]:
    """(exit status, peak RSS in MB, seconds, stderr) of translate.py as a child process."""
    cmd = [
        sys.executable,
        str(REPO_ROOT / "translate.py"),
        "--model",
        args.model,
        "--beam-size",
        str(args.beam_size),
        *argv,
    ]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    started = time.monotonic()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            cmd, stdin=stdin, stdout=stdout or subprocess.DEVNULL, stderr=err, env=env, cwd=REPO_ROOT
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        return proc.returncode, usage.ru_maxrss / 1024, time.monotonic() - started, err.read()


def check_output(path: Path, expected: list[str], what: str) -> list[str]:
    data = path.read_bytes().decode("utf-8")
    got = data.split("\n")
    problems = []
    if got[-1] != "":
        problems.append(f"{what}: the output does not end with a newline")
    got = got[:-1]
    if len(got) != len(expected):
        problems.append(f"{what}: {len(got):,} output lines for {len(expected):,} input lines")
    wrong = [i for i, (g, e) in enumerate(zip(got, expected)) if g != e]
    if wrong:
        i = wrong[0]
        problems.append(
            f"{what}: {len(wrong):,} lines differ from their input line's translation, first line {i + 1}: "
            f"{got[i]!r} != {expected[i]!r}"
        )
    return problems


def main(argv=None) -> int:
    args = parse_args(argv)
    from nmt.cli.quiet import import_tensorflow

    import_tensorflow()
    from nmt.cli import translate  # its one_line(): how a translation is written
    from nmt.decode.translator import load_run

    translator = load_run(args.model)
    rng = random.Random(args.seed)
    from nmt.text import toy_corpus

    # Ordinary sentences of the built-in corpus, made in memory (the same on every machine, prepared or not).
    ordinary = [source for source, _ in toy_corpus.generate(seed=0, sizes={"test": 40})["test"]]
    pool = templates(ordinary)
    settings = translator.settings(beam_size=args.beam_size)
    oracle = [translate.one_line(t.text) for t in translator.translate(pool, settings)]

    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="stress_translate."))
    work.mkdir(parents=True, exist_ok=True)
    problems = []
    try:
        chosen = [rng.randrange(len(pool)) for _ in range(args.lines)]
        # Both files end without a newline, so their last line cannot be empty (it would be no line at all).
        filled = next(i for i, line in enumerate(pool) if line)
        for last in (args.small_lines - 1, args.lines - 1):
            chosen[last] = chosen[last] if pool[chosen[last]] else filled
        big, small = work / "input.txt", work / "input_small.txt"
        text = "\n".join(pool[i] for i in chosen)  # the last line without a newline
        big.write_bytes(text.encode("utf-8"))
        small.write_bytes("\n".join(pool[i] for i in chosen[: args.small_lines]).encode("utf-8"))
        expected = [oracle[i] for i in chosen]
        print(
            f"{args.lines:,} lines from {len(pool)} templates ({big.stat().st_size / 1e6:.1f} MB), beam "
            f"{args.beam_size}"
        )

        out = work / "out_file.txt"
        status, peak, seconds, err = run_translate(args, ["--input", str(big), "--output", str(out)])
        warnings = err.decode("utf-8", "replace").count("\nwarning:") + err.decode("utf-8", "replace").startswith(
            "warning:"
        )
        print(
            f"file:  exit {status}, {seconds:.1f} s ({args.lines / seconds:,.0f} lines/s), peak RSS {peak:,.0f} MB, "
            f"{warnings:,} over-long lines cut with a warning"
        )
        if status != 0:
            problems.append(f"file run: exit status {status}: {err.decode('utf-8', 'replace')[-500:]}")
        else:
            problems += check_output(out, expected, "file run")

        piped = work / "out_pipe.txt"
        with open(big, "rb") as source, open(piped, "wb") as sink:
            cat = subprocess.Popen(["cat"], stdin=source, stdout=subprocess.PIPE)
            status, peak_pipe, seconds, err = run_translate(args, [], stdin=cat.stdout, stdout=sink)
            cat.stdout.close()
            cat.wait()
        print(f"pipe:  exit {status}, {seconds:.1f} s, peak RSS {peak_pipe:,.0f} MB")
        if status != 0:
            problems.append(f"pipe run: exit status {status}: {err.decode('utf-8', 'replace')[-500:]}")
        else:
            problems += check_output(piped, expected, "pipe run")

        out_small = work / "out_small.txt"
        status, peak_small, seconds, err = run_translate(args, ["--input", str(small), "--output", str(out_small)])
        ratio = peak / peak_small
        print(
            f"small: exit {status}, {args.small_lines:,} lines, peak RSS {peak_small:,.0f} MB; "
            f"{args.lines:,} lines / {args.small_lines:,} lines: {ratio:.3f}x (limit {MAX_MEMORY_GROWTH:.2f}x)"
        )
        if status != 0:
            problems.append(f"small run: exit status {status}")
        else:
            problems += check_output(out_small, expected[: args.small_lines], "small run")
        if ratio > MAX_MEMORY_GROWTH:
            problems.append(f"peak memory grew {ratio:.2f}x from {args.small_lines:,} to {args.lines:,} lines")
    finally:
        if not args.work_dir:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    print("result: " + ("every line aligned, memory flat" if not problems else "FAILED"))
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())

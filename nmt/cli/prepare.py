#!/usr/bin/env python
"""Write prepared parallel corpora into data/<name>/ as {train,dev,test}.{lang} text files.

    nmt prepare numbers                  # the built-in corpus, no download
    nmt prepare multi30k                 # download Multi30k Task 1
    nmt prepare multi30k --source DIR    # or copy it from a local directory
    nmt prepare tsv deu.txt --src-col 1 --tgt-col 2 --src-lang en --tgt-lang de

Every file written is listed with its line count. A corpus directory is used for training with
``corpus: {dir: data/<name>, src_lang: .., tgt_lang: ..}``. Mistakes are one line, ``error: ...``,
exit status 2.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from nmt.errors import ArgumentParser, UserError
from nmt.files import AtomicFile, write_error
from nmt.text import toy_corpus
from nmt.text.corpus import TsvSource, check_file, split_indices
from nmt.text.progress import Progress
from nmt.text.textfile import read_lines

MULTI30K_URL = "https://github.com/multi30k/dataset/raw/master/data/task1/raw"
MULTI30K_LANGS = ("en", "de", "fr", "cs")
#: Our split name -> Multi30k Task 1 file stems (the first is the name in the public repository).
MULTI30K_SPLITS = {
    "train": ("train",),
    "dev": ("val", "dev"),
    "test": ("test_2016_flickr", "test2016", "test"),
}


class Writer(AtomicFile):
    """Writes one output file atomically (temporary name, then rename; the plain file mode) and counts
    its lines."""

    def __init__(self, path: Path):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise write_error(path.parent, error) from None
        super().__init__(path)
        self.lines = 0

    def write(self, line: str) -> None:
        super().write(line + "\n")
        self.lines += 1


def report(written: list[tuple[Path, int]]) -> None:
    for path, n in written:
        try:
            shown = path.relative_to(Path.cwd())
        except ValueError:
            shown = path
        print(f"wrote {shown} ({n:,} line{'' if n == 1 else 's'})")


def _name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value):
        raise UserError(f"--name: expected letters, digits, '_', '.' or '-', got {value!r}")
    return value


def _size(value: str) -> float:
    """'0.05' -> a fraction, '1000' -> a count."""
    try:
        if re.fullmatch(r"\d+", value):
            return int(value)
        f = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a fraction below 1 or a whole number of pairs, got {value!r}"
        ) from None
    if not 0 < f < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction below 1 or a whole number of pairs, got {value!r}")
    return f


# --------------------------------------------------------------------------------------------
# multi30k


def _find_local(source: Path, split: str, lang: str) -> Path:
    for stem in MULTI30K_SPLITS[split]:
        for name in (f"{stem}.{lang}", f"{stem}.{lang}.gz"):
            if (source / name).is_file():
                return source / name
    names = " or ".join(f"{s}.{lang}[.gz]" for s in MULTI30K_SPLITS[split])
    raise UserError(
        f"--source {source}: no {names} (expected Multi30k Task 1 files train/val/test_2016_flickr.<lang>[.gz])"
    )


def _download(url: str, dest: Path) -> None:
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(dest, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0) or None
            done = 0
            with Progress(f"downloading {url.rsplit('/', 1)[-1]}", total_bytes=total) as prog:
                while True:
                    chunk = resp.read(1 << 16)
                    if not chunk:
                        break
                    out.write(chunk)
                    done += len(chunk)
                    prog.update(0, done)
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise UserError(
            f"could not download {url} ({reason}); download Multi30k Task 1 yourself and run: "
            "prepare_data.py multi30k --source DIR"
        ) from None


def prepare_multi30k(args: argparse.Namespace) -> list[tuple[Path, int]]:
    out = args.data_dir / args.name
    langs = args.langs
    written: list[tuple[Path, int]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for split in ("train", "dev", "test"):
            counts = {}
            for lang in langs:
                if args.source is not None:
                    src = _find_local(args.source, split, lang)
                else:
                    base = os.environ.get("NMT_MULTI30K_URL", MULTI30K_URL).rstrip("/")
                    stem = MULTI30K_SPLITS[split][0]
                    src = Path(tmp) / f"{stem}.{lang}.gz"
                    _download(f"{base}/{stem}.{lang}.gz", src)
                check_file(src, "multi30k")
                w = Writer(out / f"{split}.{lang}")
                try:
                    for line in read_lines(src, progress="copying"):
                        w.write(line)
                except BaseException:
                    w.abort()
                    raise
                w.commit()
                counts[lang] = w.lines
                written.append((w.path, w.lines))
            if len(set(counts.values())) > 1:
                detail = ", ".join(f"{split}.{lang} {n:,}" for lang, n in counts.items())
                raise UserError(
                    f"multi30k {split}: the languages have different line counts ({detail}); the files are not aligned"
                )
    return written


# --------------------------------------------------------------------------------------------
# tsv


def prepare_tsv(args: argparse.Namespace) -> list[tuple[Path, int]]:
    name = args.name or _name(args.file.name.split(".")[0] or "tsv")
    if args.src_lang == args.tgt_lang:
        raise UserError(f"--src-lang and --tgt-lang are both {args.src_lang!r}; the file names would clash")
    source = TsvSource(args.file, args.src_col, args.tgt_col, what="tsv FILE")
    n = source.count()
    dev, test = split_indices(n, args.dev_size, args.test_size, args.seed, what=f"tsv {args.file}")
    for option, size, chosen in (("--dev-size", args.dev_size, dev), ("--test-size", args.test_size, test)):
        if not chosen:  # train.py refuses an empty dev or test file: say so now, write nothing
            raise UserError(
                f"tsv {args.file}: {option} {size} of {n:,} pairs is 0 pairs, so the {option[2:-5]} split would "
                "be empty; "
                f"expected at least 1 pair (give {option} as a number of pairs, e.g. {option} 1, or use a "
                "larger corpus)"
            )
    where = {i: "dev" for i in dev}
    where.update({i: "test" for i in test})
    out = args.data_dir / name
    writers = {
        (split, side): Writer(out / f"{split}.{lang}")
        for split in ("train", "dev", "test")
        for side, lang in (("src", args.src_lang), ("tgt", args.tgt_lang))
    }
    try:
        for i, (s, t) in enumerate(source.pairs(progress="splitting")):
            split = where.get(i, "train")
            writers[(split, "src")].write(s)
            writers[(split, "tgt")].write(t)
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    written = []
    for w in writers.values():
        w.commit()
        written.append((w.path, w.lines))
    return written


# --------------------------------------------------------------------------------------------
# numbers


def prepare_numbers(args: argparse.Namespace) -> list[tuple[Path, int]]:
    sizes = {"train": args.train_size, "dev": args.dev_size, "test": args.test_size}
    for split, size in sizes.items():
        if size < 1:
            raise UserError(f"--{split}-size: expected a positive number of pairs, got {size}")
    if not 1 <= args.max_digits <= 6:
        raise UserError(f"--max-digits: expected 1 to 6, got {args.max_digits}")
    paths = toy_corpus.write(args.data_dir / args.name, seed=args.seed, sizes=sizes, max_digits=args.max_digits)
    return [(p, sizes[name.split(".")[0]]) for name, p in paths.items()]


# --------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--data-dir", type=Path, default=Path("data"), help="where corpora go (default: data/ in the current directory)"
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="{numbers,multi30k,tsv}")

    n = sub.add_parser("numbers", help="the built-in English-to-German number words corpus (no download)")
    n.add_argument("--name", type=_name_arg, default="numbers")
    n.add_argument("--seed", type=int, default=toy_corpus.DEFAULT_SEED)
    n.add_argument("--train-size", type=int, default=toy_corpus.DEFAULT_SIZES["train"])
    n.add_argument("--dev-size", type=int, default=toy_corpus.DEFAULT_SIZES["dev"])
    n.add_argument("--test-size", type=int, default=toy_corpus.DEFAULT_SIZES["test"])
    n.add_argument("--max-digits", type=int, default=6, help="largest numbers have this many digits (1-6)")
    n.set_defaults(run=prepare_numbers)

    m = sub.add_parser("multi30k", help="Multi30k Task 1 (train, val -> dev, test2016 -> test)")
    m.add_argument("--source", type=Path, default=None, help="copy from this directory instead of downloading")
    m.add_argument("--langs", nargs="+", default=list(MULTI30K_LANGS), choices=MULTI30K_LANGS)
    m.add_argument("--name", type=_name_arg, default="multi30k")
    m.set_defaults(run=prepare_multi30k)

    t = sub.add_parser("tsv", help="split a TSV corpus (e.g. a Tatoeba/Anki export) into train/dev/test")
    t.add_argument("file", type=Path)
    t.add_argument("--src-col", type=int, required=True, help="source column, numbered from 1")
    t.add_argument("--tgt-col", type=int, required=True, help="target column, numbered from 1")
    t.add_argument(
        "--name", type=_name_arg, default=None, help="data/<name> (default: the file name up to its first dot)"
    )
    t.add_argument("--src-lang", default="src", type=_name_arg, help="suffix of source files (default: src)")
    t.add_argument("--tgt-lang", default="tgt", type=_name_arg, help="suffix of target files (default: tgt)")
    t.add_argument("--dev-size", type=_size, default=0.05, help="fraction (0.05) or number of pairs (1000)")
    t.add_argument("--test-size", type=_size, default=0.05, help="fraction (0.05) or number of pairs (1000)")
    t.add_argument("--seed", type=int, default=1234, help="seed of the dev/test sample")
    t.set_defaults(run=prepare_tsv)
    return p


def _name_arg(value: str) -> str:
    try:
        return _name(value)
    except UserError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command == "multi30k" and args.source is not None and not args.source.is_dir():
            raise UserError(f"--source: directory not found: {args.source}")
        written = args.run(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    report(written)
    return 0


if __name__ == "__main__":
    sys.exit(main())

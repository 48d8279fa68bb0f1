#!/usr/bin/env python
"""Translate sentences with a trained run directory.

    python translate.py --model runs/multi30k "A man is sleeping." "Two dogs play."
    python translate.py --model runs/multi30k --input test.en --output test.hyp.de --reference test.de
    python translate.py --model runs/multi30k --nbest 5 < test.en          # index ||| hypothesis ||| score
    python translate.py --model runs/multi30k                               # interactive prompt on a terminal
    python translate.py --model runs/a --model runs/b --input test.en       # an ensemble of two runs

Sentences come from the arguments, from --input FILE, or from standard input (read in chunks of
--chunk-lines lines, so memory stays constant on any file size); with standard input on a terminal an
interactive prompt translates line by line. Every input line gives exactly one output line, in input
order (an empty line gives an empty line); with --nbest N every input line gives N lines
``index ||| hypothesis ||| score`` (index: the 0-based input line number, score: log P / length penalty).
Line breaks inside a translation (possible with byte pieces) are written as spaces.
Search defaults (beam size, length penalty, batch size, output length limits) come from the run's
config.yaml ``decode:`` section (the first run's, for an ensemble: runs with one vocabulary whose per-step
probabilities are averaged, `nmt.decode.ensemble`). With --reference, sacreBLEU BLEU and chrF with their signatures are
printed on standard error. Mistakes are reported as one line ``error: ...`` with exit status 2; the
options and the files they name are checked before TensorFlow loads, so such a mistake is reported at once.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

from nmt.config import DecodeConfig
from nmt.decode.settings import Batching, SearchSettings, check_chunk_lines
from nmt.errors import ArgumentParser, UserError
from nmt.files import AtomicFile
from nmt.rundir import CONFIG_FILE
from nmt.text import textfile

LINE_BREAKS = str.maketrans({c: " " for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"})
PROMPT = "> "
DEFAULT_CHUNK_LINES = 4000


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "sentences", nargs="*", metavar="SENTENCE", help="sentences to translate (instead of --input or standard input)"
    )
    p.add_argument(
        "--model",
        required=True,
        action="append",
        metavar="RUN_DIR",
        help="run directory written by train.py (config.yaml, tokenizer/, model.keras); repeat it to decode an "
        "ensemble of runs with one vocabulary (their probabilities averaged; the first run's decoding defaults)",
    )
    p.add_argument(
        "--checkpoint",
        metavar="WHICH",
        help="translate with a checkpoint's weights: best, last, average (the mean of the kept checkpoints, "
        "train.keep_checkpoints) or a step number (default: model.keras, the best, or the average where the run "
        "was trained with train.average_checkpoints)",
    )
    p.add_argument(
        "--beam-size", type=int, metavar="K", help="beam size; 1 = greedy search (default: config decode.beam_size)"
    )
    p.add_argument(
        "--nbest",
        type=int,
        metavar="N",
        help="write the N best translations as 'index ||| hypothesis ||| score' (N <= beam size)",
    )
    p.add_argument(
        "--length-penalty",
        type=float,
        metavar="A",
        help="GNMT length penalty alpha >= 0 (default: the run's decode_tuned.yaml, else config decode.length_penalty)",
    )
    p.add_argument(
        "--shortlist",
        type=int,
        metavar="K",
        help="score only the run's lexical shortlist at each step: K translations per source piece besides the "
        "frequent pieces (0: the whole vocabulary; default: config decode.shortlist; runs without shortlist.npz "
        "always score the whole vocabulary)",
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--batch-size", type=int, metavar="N", help="sentences per batch (default: config decode.batch_size)"
    )
    group.add_argument("--batch-tokens", type=int, metavar="N", help="or: padded source tokens per batch")
    p.add_argument("--input", metavar="FILE", help="UTF-8 text, one sentence per line (default: standard input)")
    p.add_argument(
        "--output",
        metavar="FILE",
        help="where to write the translations (default: standard output); written atomically",
    )
    p.add_argument(
        "--reference",
        metavar="FILE",
        help="reference translations, one per input line: print BLEU and chrF on standard error",
    )
    p.add_argument(
        "--attention-plot",
        metavar="DIR",
        help="write one attention heatmap PNG per sentence into DIR (attention models)",
    )
    p.add_argument(
        "--chunk-lines",
        type=int,
        default=DEFAULT_CHUNK_LINES,
        metavar="N",
        help=f"lines read, sorted by length and translated at a time (default {DEFAULT_CHUNK_LINES})",
    )
    p.add_argument(
        "--max-input-len",
        type=int,
        metavar="N",
        help="source tokens translated per line; longer lines are cut with a warning "
        "(default: config decode.max_input_len)",
    )
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's own start-up and runtime messages")
    p.add_argument(
        "--xla", action="store_true", help="compile the search with XLA (batches padded to a few fixed shapes)"
    )
    return p


# ----------------------------------------------------------------------------------------------------- input


def decode_line(raw: bytes, name: str, number: int) -> str:
    """One input line as text: an LF or CRLF ending removed, nothing else (`nmt.text.textfile.CRLF`); strict UTF-8."""
    return textfile.decode_line(raw, name, number, textfile.CRLF)


def is_regular_file(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def binary_stream(stream) -> BinaryIO:
    return getattr(stream, "buffer", stream)


# ---------------------------------------------------------------------------------------------------- output


def check_output_path(path: Path) -> None:
    """A one-line UserError unless --output names a file that can be made: not a directory, in one that exists."""
    if path.is_dir():
        raise UserError(f"--output {path}: is a directory, expected a file name")
    if not path.parent.is_dir():
        raise UserError(f"--output {path}: the directory {path.parent} does not exist")


class Output:
    """Standard output, or --output FILE written to a temporary name and renamed when complete (a device
    or a pipe such as /dev/stdout, /dev/null or a FIFO is written directly). A failed write (a full disk)
    is a one-line UserError, and the temporary file is removed."""

    def __init__(self, path: str | None, stdout: TextIO):
        self.path = Path(path) if path else None
        self.atomic: AtomicFile | None = None
        self.file = stdout
        if self.path is None:
            return
        check_output_path(self.path)
        self.atomic = AtomicFile(self.path, what="--output")

    def write(self, text: str) -> None:
        if self.atomic is not None:
            self.atomic.write(text)
            return
        try:
            self.file.write(text)
        except BrokenPipeError:
            raise
        except OSError as error:
            raise UserError(f"standard output: cannot write it ({error.strerror or error})") from None

    def flush(self) -> None:
        if self.atomic is not None:
            self.atomic.flush()
            return
        try:
            self.file.flush()
        except BrokenPipeError:
            raise
        except OSError as error:
            raise UserError(f"standard output: cannot write it ({error.strerror or error})") from None

    def commit(self) -> None:
        if self.atomic is not None:
            self.atomic.commit()
        else:
            self.flush()

    def abort(self) -> None:
        if self.atomic is not None:
            self.atomic.abort()


def one_line(text: str) -> str:
    return text.translate(LINE_BREAKS)


# --------------------------------------------------------------------------------------------------- running

_TRANSLATORS = {}


def get_translator(run_dir, jit_compile: bool, ensemble=(), checkpoint: str | None = None):
    """load_run, cached per process (repeated calls of main() reuse the model and its traced functions)."""
    from nmt.decode.translator import MODEL_FILE, load_run

    dirs = [Path(d).resolve() for d in (run_dir, *ensemble)]
    key = (tuple((str(d), (d / MODEL_FILE).stat().st_mtime_ns) for d in dirs), bool(jit_compile), checkpoint)
    if key not in _TRANSLATORS:
        _TRANSLATORS.clear()
        _TRANSLATORS[key] = load_run(dirs[0], jit_compile=jit_compile, ensemble=dirs[1:], checkpoint=checkpoint)
    return _TRANSLATORS[key]


class Writer:
    """Writes translations (plain or n-best), keeps the best ones for scoring, draws attention plots."""

    def __init__(
        self,
        translator,
        output: Output,
        nbest_format: bool,
        keep: bool,
        plot_dir: Path | None,
        source_name: str | None = "<stdin>",
        stderr: TextIO | None = None,
    ):
        self.translator = translator
        self.source_name = source_name
        self.stderr = stderr if stderr is not None else sys.stderr
        self.output = output
        self.nbest_format = nbest_format
        self.hypotheses: list[str] | None = [] if keep else None
        self.plot_dir = plot_dir
        self.count = 0

    def __call__(self, translation) -> None:
        index = self.count
        if translation.truncated_from is not None:
            where = (
                f"sentence argument {index + 1}"
                if self.source_name is None
                else f"{self.source_name}, line {index + 1}"
            )
            print(
                f"warning: {where}: {translation.truncated_from:,} source tokens; "
                f"translated the first {len(translation.source_ids):,} (--max-input-len)",
                file=self.stderr,
                flush=True,
            )
        if self.nbest_format:
            for hyp in translation.hypotheses:
                self.output.write(f"{index} ||| {one_line(hyp.text)} ||| {hyp.score:.6f}\n")
        else:
            self.output.write(one_line(translation.text) + "\n")
        if self.hypotheses is not None:
            self.hypotheses.append(one_line(translation.text))
        if self.plot_dir is not None and translation.source_ids:
            self.plot(index, translation)
        self.count += 1

    def plot(self, index: int, translation) -> None:
        from nmt.train.plotting import plot_translation

        score = translation.hypotheses[0].score
        plot_translation(
            self.translator,
            translation,
            self.plot_dir / f"{index:06d}.png",
            title=f"sentence {index} (score {score:.3f})",
        )


#: The options that set a search or batching setting, by the setting's name (`nmt.config.fields.FieldError`).
OPTION_NAMES = {
    "beam_size": "--beam-size",
    "nbest": "--nbest",
    "length_penalty": "--length-penalty",
    "shortlist": "--shortlist",
    "batch_size": "--batch-size",
    "batch_tokens": "--batch-tokens",
    "max_input_len": "--max-input-len",
    "chunk_lines": "--chunk-lines",
}


def error_message(error: UserError) -> str:
    """The message of error; one about a setting (`nmt.config.fields.FieldError`) names the option that sets it."""
    renamed = getattr(error, "renamed", None)
    return str(renamed(OPTION_NAMES) if renamed is not None else error)


@dataclass
class Request:
    """What translate.py was asked to do, with every option and file checked (`check_request`)."""

    run_dir: Path
    ensemble: list[Path]  # the other runs of an ensemble (--model given more than once)
    decode: DecodeConfig  # the run's decode: section (the search defaults)
    settings: SearchSettings
    batching: Batching
    references: list[str] | None
    plot_dir: Path | None
    interactive: bool
    checkpoint: str | None = None  # --checkpoint: best, last, average or a step (None: model.keras)
    weights: str = ""  # what --checkpoint loads, said on standard error ("" without it)


def check_request(args, stdin: TextIO) -> Request:
    """Checks the options, the run directory's config and the files named, without TensorFlow (a mistake is
    reported in a fraction of a second, before the model loads). Creates the --attention-plot directory."""
    from nmt import config as config_module
    from nmt.checkpoint import check_models
    from nmt.decode import tuning

    (run_dir, *ensemble), weights = check_models(args.model, args.checkpoint)
    cfg = config_module.load(run_dir / CONFIG_FILE)
    architectures = {run_dir: cfg.model.architecture}
    architectures.update({d: config_module.load(d / CONFIG_FILE).model.architecture for d in ensemble})
    decode = tuning.apply(run_dir, cfg.decode)  # the length penalty chosen on dev, where training tuned it
    settings = SearchSettings.from_decode(
        decode,
        beam_size=args.beam_size,
        nbest=args.nbest,
        length_penalty=args.length_penalty,
        shortlist=args.shortlist,
        attention=bool(args.attention_plot),
    )
    batching = Batching.from_decode(
        decode, batch_size=args.batch_size, batch_tokens=args.batch_tokens, max_input_len=args.max_input_len
    )
    check_chunk_lines(args.chunk_lines)
    for directory, architecture in architectures.items():
        if args.attention_plot and architecture != "attention":
            raise UserError(
                f"--attention-plot: the model in {directory} is a {architecture} model, which has no attention; "
                "expected an attention model"
            )
    if args.sentences and args.input:
        raise UserError("give sentences as arguments or --input FILE, not both")
    for number, sentence in enumerate(args.sentences, 1):
        try:
            sentence.encode("utf-8")
        except UnicodeEncodeError:
            raise UserError(f"sentence argument {number}: not valid UTF-8; expected UTF-8 text") from None

    interactive = not args.sentences and not args.input and bool(getattr(stdin, "isatty", lambda: False)())
    known_count = None  # checked again against the lines translated: a pipe is read once only
    if args.sentences:
        known_count = len(args.sentences)
    elif args.input and is_regular_file(args.input):
        known_count = textfile.count_lines(args.input, what="--input")
    elif args.input and (not os.path.exists(args.input) or os.path.isdir(args.input)):
        textfile.open_binary(args.input, what="--input")  # raises the one-line error (no such file, a directory)
    references = None
    if args.reference:
        from nmt.text.evaluation import read_lines

        references = read_lines(args.reference)
        if known_count is not None and known_count != len(references):
            raise UserError(
                f"--reference {args.reference}: {len(references)} lines, but the input has {known_count}; "
                "expected one reference line per input line"
            )
    if args.output:
        check_output_path(Path(args.output))
    plot_dir = None
    if args.attention_plot:
        plot_dir = Path(args.attention_plot)
        try:
            plot_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UserError(
                f"--attention-plot {plot_dir}: cannot create the directory ({error.strerror or error})"
            ) from None
    return Request(
        run_dir, ensemble, decode, settings, batching, references, plot_dir, interactive, args.checkpoint, weights
    )


def run(args, request: Request, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    """Translates what `check_request` accepted (TensorFlow is imported by now)."""
    run_dir, decode, settings, batching = request.run_dir, request.decode, request.settings, request.batching
    references, plot_dir, interactive = request.references, request.plot_dir, request.interactive

    if request.weights:
        print(f"--checkpoint {request.checkpoint}: {request.weights}", file=stderr, flush=True)
    translator = get_translator(run_dir, args.xla, request.ensemble, request.checkpoint)
    options = dict(settings=settings, batching=batching)
    output = Output(args.output, stdout)
    nbest_format = args.nbest is not None or decode.nbest > 1
    source_name = None if args.sentences else (args.input or "<stdin>")
    writer = Writer(translator, output, nbest_format, references is not None, plot_dir, source_name, stderr)
    try:
        if interactive:
            reader = textfile.LineReader(binary_stream(stdin), "<stdin>", textfile.CRLF)
            interact(translator, reader, writer, options, stderr)
        else:
            stream_all(translator, args, stdin, writer, options, stderr)
        output.commit()
    except KeyboardInterrupt:
        if not interactive:  # a partial file would pass for a complete translation
            output.abort()
            raise
        output.commit()  # every sentence translated in the session is kept
        if args.output:
            print(f"\ninterrupted: {writer.count:,} translation(s) kept in {args.output}", file=stderr, flush=True)
        raise
    except BaseException:
        output.abort()
        raise
    if references is not None:
        from nmt.text.evaluation import score

        if len(writer.hypotheses) != len(references):
            raise UserError(
                f"--reference {args.reference}: {len(references)} lines, but the input had {len(writer.hypotheses)}; "
                "expected one reference line per input line"
            )
        if writer.hypotheses:
            print(score(writer.hypotheses, references).format(), file=stderr, flush=True)
    return 0


def stream_all(translator, args, stdin, writer: Writer, options: dict, stderr: TextIO) -> None:
    from nmt.text.progress import Progress

    if args.sentences:
        for translation in translator.translate(args.sentences, **options):
            writer(translation)
        return
    source = textfile.open_binary(args.input, what="--input") if args.input else binary_stream(stdin)
    name = args.input or "<stdin>"
    total = (
        os.fstat(source.fileno()).st_size if args.input and stat.S_ISREG(os.fstat(source.fileno()).st_mode) else None
    )
    reader = textfile.LineReader(source, name, textfile.CRLF)
    try:
        with Progress(f"translating {name}", total_bytes=total, stream=stderr) as progress:
            for translation in translator.translate_stream(reader, chunk_lines=args.chunk_lines, **options):
                writer(translation)
                if writer.count % args.chunk_lines == 0:
                    writer.output.flush()
                    progress.update(writer.count, reader.bytes_read)
            progress.update(writer.count, reader.bytes_read)
    finally:
        if args.input:
            source.close()


def interact(translator, reader: textfile.LineReader, writer: Writer, options: dict, stderr: TextIO) -> None:
    """A prompt on standard error, one translation (or n-best list) on the output per line; ends at end of input."""
    print("Type a sentence and press Enter; Ctrl-D quits.", file=stderr, flush=True)
    while True:
        stderr.write(PROMPT)
        stderr.flush()
        try:
            line = reader.readline()
        except UserError as error:  # a bad line is reported and the session goes on
            print(f"error: {error}", file=stderr, flush=True)
            continue
        if line is None:
            stderr.write("\n")
            stderr.flush()
            return
        for translation in translator.translate([line], **options):
            writer(translation)
        writer.output.flush()


def main(argv=None, stdin: TextIO | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    real_stdout = stdout is None
    stdin = sys.stdin if stdin is None else stdin
    if stdout is None:
        stdout = sys.stdout
        if hasattr(stdout, "reconfigure"):
            stdout.reconfigure(encoding="utf-8", newline="\n")
    if stderr is None:
        stderr = sys.stderr
        if hasattr(stderr, "reconfigure"):
            stderr.reconfigure(errors="backslashreplace")
    try:
        args = build_parser().parse_args(argv)
        from nmt.cli.quiet import import_tensorflow

        request = check_request(args, stdin)
        import_tensorflow(verbose=args.verbose)
        return run(args, request, stdin, stdout, stderr)
    except UserError as error:
        print(f"error: {error_message(error)}", file=stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        print("", file=stderr, flush=True)
        return 130
    except BrokenPipeError:  # e.g. `translate.py ... | head`: stop quietly
        if real_stdout:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())

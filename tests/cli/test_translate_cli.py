"""translate.py: one output line per input line in input order (files, standard input, arguments),
n-best lines and scores, --reference scores, attention plots, the interactive prompt, and one-line errors.

Most tests call ``translate.main`` in process (the loaded model is cached between calls); two run the
script in a subprocess (exit status, no traceback) and one under a pseudo-terminal.
"""

from __future__ import annotations

import io
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import translate  # the script, importable from the repository root
from tests import helpers

REPO_ROOT = Path(__file__).resolve().parents[2]
CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="module")
def run(translator_run):
    return translator_run


@pytest.fixture(scope="module")
def cho_run(tmp_path_factory):
    return helpers.make_run(tmp_path_factory.mktemp("cli") / "cho2014", architecture="cho2014", epochs=0)


@pytest.fixture(scope="module")
def translator(run):
    return translate.get_translator(run["dir"], False)


class FakeTTY(io.TextIOWrapper):
    def isatty(self):
        return True


def cli(argv, stdin: bytes = b"", tty: bool = False):
    """(exit status, stdout, stderr) of translate.main(argv)."""
    stdin_stream = (FakeTTY if tty else io.TextIOWrapper)(io.BytesIO(stdin), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    status = translate.main([str(a) for a in argv], stdin=stdin_stream, stdout=out, stderr=err)
    return status, out.getvalue(), err.getvalue()


def input_lines(run, n=60):
    """Test sentences of mixed lengths with empty, blank and CRLF lines among them."""
    lines = [s for s, _ in run["test"][:n]]
    lines[0:0] = [""]
    lines[5:5] = ["", "   "]
    lines[20:20] = ["three"]
    lines.append("")
    return lines


def assert_one_line_error(status, out, err, *patterns):
    assert status == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for pattern in patterns:
        assert pattern in err, err


def test_file_output_equals_translator_line_by_line(run, translator, tmp_path):
    lines = input_lines(run)
    path = tmp_path / "in.en"
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    out_path = tmp_path / "out.de"
    status, out, err = cli(
        ["--model", run["dir"], "--input", path, "--output", out_path, "--chunk-lines", 7, "--batch-size", 3]
    )
    assert status == 0, err
    assert out == ""
    written = out_path.read_text(encoding="utf-8").split("\n")
    assert written[-1] == ""  # ends with LF
    written = written[:-1]
    assert len(written) == len(lines)
    assert written == [t.text for t in translator.translate(lines)]
    assert [w for w, line in zip(written, lines) if not line.strip()] == [""] * 4
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # temporary renamed


def test_stdin_crlf_and_arguments(run, translator):
    lines = input_lines(run, 25)
    stdin = "\r\n".join(lines).encode("utf-8") + b"\r\n"
    status, out, err = cli(["--model", run["dir"], "--beam-size", 2, "--batch-tokens", 60], stdin)
    assert status == 0, err
    assert out.split("\n")[:-1] == [t.text for t in translator.translate(lines, translator.settings(beam_size=2))]
    status, out, err = cli(["--model", run["dir"], "--beam-size", 2, lines[1], "", lines[2]])
    assert status == 0, err
    assert (
        out
        == "\n".join([t.text for t in translator.translate([lines[1], "", lines[2]], translator.settings(beam_size=2))])
        + "\n"
    )


def test_nbest_lines_and_scores_equal_search(run, translator):
    lines = input_lines(run, 12)
    status, out, err = cli(["--model", run["dir"], "--nbest", 3, "--beam-size", 4], ("\n".join(lines) + "\n").encode())
    assert status == 0, err
    rows = [line.split(" ||| ") for line in out.rstrip("\n").split("\n")]
    assert len(rows) == 3 * len(lines)
    assert [int(r[0]) for r in rows] == [i for i in range(len(lines)) for _ in range(3)]
    for i, line in enumerate(lines):
        got = rows[3 * i : 3 * i + 3]
        if not line.strip():
            assert [(r[1], float(r[2])) for r in got] == [("", 0.0)] * 3
            continue
        texts, scores = helpers.search_one(translator, line, 4, 3)
        helpers.assert_same_search([r[1] for r in got], [float(r[2]) for r in got], texts, scores, tol=1e-5)
        assert float(got[0][2]) >= float(got[1][2]) >= float(got[2][2])


def test_reference_scores_equal_sacrebleu(run, tmp_path):
    from sacrebleu.metrics import BLEU, CHRF

    from nmt.text.evaluation import read_lines, score

    pairs = run["test"][:40]
    (tmp_path / "src").write_text("".join(s + "\n" for s, _ in pairs), encoding="utf-8")
    (tmp_path / "ref").write_text("".join(t + "\n" for _, t in pairs), encoding="utf-8")
    status, out, err = cli(
        [
            "--model",
            run["dir"],
            "--input",
            tmp_path / "src",
            "--output",
            tmp_path / "hyp",
            "--reference",
            tmp_path / "ref",
        ]
    )
    assert status == 0, err
    hyps, refs = read_lines(tmp_path / "hyp"), read_lines(tmp_path / "ref")
    expected = score(hyps, refs).format()
    assert expected in err and "BLEU" in err and "chrF2" in err and "nrefs:1|case:mixed" in err
    bleu = BLEU().corpus_score(hyps, [refs]).score
    chrf = CHRF().corpus_score(hyps, [refs]).score
    assert f"BLEU = {bleu:.2f}" in err and f"chrF2 = {chrf:.2f}" in err
    assert bleu > 20  # the model was trained

    (tmp_path / "short").write_text("x\n" * 39, encoding="utf-8")
    assert_one_line_error(
        *cli(["--model", run["dir"], "--input", tmp_path / "src", "--reference", tmp_path / "short"]),
        "39 lines",
        "has 40",
    )
    # standard input: the count is known only at the end
    assert_one_line_error(
        *cli(["--model", run["dir"], "--reference", tmp_path / "short"], (tmp_path / "src").read_bytes()),
        "39 lines",
        "had 40",
    )


def test_attention_plots(run, tmp_path):
    lines = [run["test"][0][0], "", run["test"][1][0]]
    status, out, err = cli(["--model", run["dir"], "--attention-plot", tmp_path / "plots", *lines])
    assert status == 0, err
    assert len(out.split("\n")) == 4
    pngs = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert pngs == ["000000.png", "000002.png"]  # the empty sentence has nothing to plot
    assert (tmp_path / "plots" / "000000.png").read_bytes()[:4] == b"\x89PNG"


def test_interactive_prompt(run, translator):
    lines = [run["test"][2][0], "", run["test"][3][0]]
    status, out, err = cli(["--model", run["dir"]], "\n".join(lines).encode() + b"\n", tty=True)
    assert status == 0, err
    assert out.split("\n")[:-1] == [t.text for t in translator.translate(lines)]
    assert err.count(translate.PROMPT) == 4  # one per line, and the last one met end of input
    # a bad line is reported and the session goes on
    status, out, err = cli(
        ["--model", run["dir"], "--beam-size", 1], b"\xff\xfe\n" + lines[0].encode() + b"\n", tty=True
    )
    assert status == 0 and "line 1: not valid UTF-8" in err
    assert out == [t.text for t in translator.translate([lines[0]], translator.settings(beam_size=1))][0] + "\n"


def test_one_line_errors(run, cho_run, tmp_path):
    model = run["dir"]
    (tmp_path / "bad.txt").write_bytes(b"one\ntwo\nthr\xe9e\nfour\n")
    incomplete = tmp_path / "incomplete"
    incomplete.mkdir()
    (incomplete / "config.yaml").write_text("{}\n")
    cases = [
        (["--model", model, "--beam-size", 0, "x"], ["--beam-size: received 0, expected a positive integer"]),
        (
            ["--model", model, "--beam-size", 2, "--nbest", 3, "x"],
            ["--nbest: received 3, expected at most the beam size (2)"],
        ),
        (
            ["--model", model, "--length-penalty", -0.5, "x"],
            ["--length-penalty: received -0.5, expected a number >= 0"],
        ),
        (["--model", model, "--max-input-len", 0, "x"], ["--max-input-len: received 0, expected a positive integer"]),
        (["--model", model, "--shortlist", -1, "x"], ["--shortlist: received -1, expected an integer >= 0"]),
        (["--model", model, "--chunk-lines", 0, "x"], ["--chunk-lines: received 0, expected a positive integer"]),
        (["--model", model, "--batch-tokens", -3, "x"], ["--batch-tokens: received -3, expected a positive integer"]),
        (["--model", model, "--beam-size", "five", "x"], ["--beam-size", "invalid int value: 'five'"]),
        (["--model", model, "--batch-size", 4, "--batch-tokens", 100, "x"], ["--batch-tokens", "--batch-size"]),
        (["--model", tmp_path / "nowhere", "x"], ["nowhere", "no such run directory"]),
        (["--model", incomplete, "x"], ["missing tokenizer/, model.keras"]),
        (["--model", model, "--input", tmp_path / "missing.txt"], ["missing.txt", "no such file"]),
        (["--model", model, "--input", tmp_path], ["is a directory"]),
        (["--model", model, "--input", tmp_path / "bad.txt"], ["bad.txt, line 3: not valid UTF-8", "0xe9"]),
        (["--model", model, "--input", tmp_path / "bad.txt", "x"], ["not both"]),
        (
            ["--model", cho_run["dir"], "--attention-plot", tmp_path / "p", "x"],
            ["--attention-plot", "cho2014", "no attention"],
        ),
        (["--model", model, "--reference", tmp_path / "none.txt", "x"], ["none.txt", "no such file"]),
        (["--model", model, "--output", tmp_path / "no" / "dir.txt", "x"], ["--output", "does not exist"]),
        (["x"], ["--model"]),
    ]
    for argv, patterns in cases:
        assert_one_line_error(*cli(argv), *patterns)
    # stdin with a bad line: the error names <stdin> and the line; --output is not left half written
    status, out, err = cli(["--model", model, "--output", tmp_path / "o.txt"], (tmp_path / "bad.txt").read_bytes())
    assert_one_line_error(status, out, err, "<stdin>, line 3")
    assert not (tmp_path / "o.txt").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".o.txt")]


def test_options_and_files_are_checked_before_loading_tensorflow(tmp_path):
    """A bad option, a missing file or a reference of the wrong length is reported at once: TensorFlow (seconds
    to load) is not imported. The run directory here holds no model at all, so nothing can have been loaded."""
    run_dir = tmp_path / "run"
    (run_dir / "tokenizer").mkdir(parents=True)
    (run_dir / "config.yaml").write_text((REPO_ROOT / "configs" / "toy.yaml").read_text())
    (run_dir / "model.keras").write_bytes(b"not a model: never opened by these checks")
    (tmp_path / "two.txt").write_text("one\ntwo\n")
    (tmp_path / "three.txt").write_text("eins\nzwei\ndrei\n")
    model = ["--model", str(run_dir)]
    cases = [
        [*model, "--beam-size", "0", "x"],
        [*model, "--beam-size", "2", "--nbest", "3", "x"],
        [*model, "--length-penalty", "nan", "x"],
        [*model, "--batch-tokens", "-3", "x"],
        [*model, "--chunk-lines", "0", "x"],
        [*model, "--input", str(tmp_path / "missing.txt")],
        [*model, "--input", str(tmp_path)],
        [*model, "--input", str(tmp_path / "two.txt"), "--reference", str(tmp_path / "three.txt")],
        [*model, "--output", str(tmp_path / "no" / "out.txt"), "x"],
        ["--model", str(tmp_path / "nowhere"), "x"],
    ]
    code = (
        "import json, sys; from nmt.cli.translate import main\n"
        "for argv in json.loads(sys.argv[1]):\n"
        "    print(main(argv), flush=True)\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(cases)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
        timeout=120,
    )
    assert proc.stdout.split("\n")[:-1] == ["2"] * len(cases) + ["[]"], proc.stdout + proc.stderr
    errors = proc.stderr.splitlines()
    assert len(errors) == len(cases) and all(e.startswith("error: ") for e in errors), proc.stderr
    expected = [
        "--beam-size: received 0, expected a positive integer",
        "--nbest: received 3, expected at most the beam size (2)",
        "--length-penalty: received nan, expected a finite number >= 0",
        "--batch-tokens: received -3, expected a positive integer",
        "--chunk-lines: received 0, expected a positive integer",
        "missing.txt: no such file",
        "is a directory",
        "three.txt: 3 lines, but the input has 2",
        "--output",
        "no such run directory",
    ]
    for error, pattern in zip(errors, expected, strict=True):
        assert pattern in error, (pattern, error)
    assert "does not exist" in errors[8]
    # The options being right (toy.yaml's model is an attention model), translate.py creates the plot
    # directory and goes on to load TensorFlow and the run (whose tokenizer and model are missing here).
    plot_case = [*model, "--attention-plot", str(tmp_path / "plots"), "x"]
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps([plot_case])],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="3"),
        timeout=300,
    )
    assert proc.stdout.split() == ["2", "['keras',", "'tensorflow']"], proc.stdout + proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and str(run_dir) in last and "Traceback" not in proc.stderr, proc.stderr
    assert (tmp_path / "plots").is_dir()


def _env():
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    return env


@pytest.mark.slow
def test_script_exit_status_and_no_traceback(run, tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "translate.py"), "--model", str(tmp_path / "nothing"), "hello"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: --model") and "Traceback" not in proc.stderr
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "translate.py"), "--model", str(run["dir"]), "--beam-size", "2"],
        input=f"{run['test'][0][0]}\n\n{run['test'][1][0]}\n",
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("\n") == 3 and proc.stdout.split("\n")[1] == ""


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_interactive_under_a_pty(run, translator):
    import pty

    sentence = run["test"][4][0]
    expected = [t.text for t in translator.translate([sentence])][0]
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "translate.py"), "--model", str(run["dir"])],
        stdin=follower,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
    )
    os.close(follower)
    try:
        os.write(leader, sentence.encode() + b"\n")
        deadline, out = time.monotonic() + 240, b""
        while b"\n" not in out and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 1.0)
            if ready:
                out += os.read(proc.stdout.fileno(), 4096)
        assert out.decode() == expected + "\n"
        os.write(leader, b"\x04")  # Ctrl-D: end of input
        assert proc.wait(timeout=60) == 0
        assert translate.PROMPT in proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()
        os.close(leader)


def test_decode_line_strips_exactly_one_line_ending():
    """LF and CRLF endings go, nothing else does (the CRLF part of the stdin test above would pass
    even without the stripping, since SentencePiece's normalisation treats \\r as a space)."""
    cli = translate
    assert cli.decode_line(b"one two\r\n", "stdin", 1) == "one two"
    assert cli.decode_line(b"one two\n", "stdin", 1) == "one two"
    assert cli.decode_line(b"one two", "stdin", 1) == "one two"  # the last line, without an ending
    assert cli.decode_line(b" tab\there \r\r\n", "stdin", 1) == " tab\there \r"  # one ending only
    assert cli.decode_line("grün\n".encode(), "stdin", 1) == "grün"
    from nmt.errors import UserError

    with pytest.raises(UserError, match=r"^in.txt, line 7: not valid UTF-8 \(byte 0xff at byte 3 of the line\)"):
        cli.decode_line(b"ab\xffc\n", "in.txt", 7)


# ------------------------------------------------------------------------------ reliability (issue: nothing is lost)


def _script(run, *args, **kwargs):
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "translate.py"), "--model", str(run["dir"]), *map(str, args)],
        capture_output=True,
        env=_env(),
        timeout=300,
        **kwargs,
    )


@pytest.mark.slow
def test_piped_input_is_translated_not_drained(run, translator, tmp_path):
    """`--input /dev/stdin` (a pipe) and a named FIFO (what `--input <(zcat f.gz)` gives) are read once:
    every line is translated, and --reference is checked against what was translated."""
    lines = [s for s, _ in run["test"][:15]]
    text = "".join(line + "\n" for line in lines).encode()
    reference = tmp_path / "ref.de"
    reference.write_text("".join(t + "\n" for _, t in run["test"][:15]), encoding="utf-8")
    proc = _script(run, "--input", "/dev/stdin", "--reference", reference, input=text)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert proc.stdout.decode().split("\n")[:-1] == [t.text for t in translator.translate(lines)]
    assert "BLEU" in proc.stderr.decode()

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    writer = subprocess.Popen(["sh", "-c", f"cat > '{fifo}'"], stdin=subprocess.PIPE)
    proc = subprocess.Popen(
        [
            sys.executable,
            str(REPO_ROOT / "translate.py"),
            "--model",
            str(run["dir"]),
            "--input",
            str(fifo),
            "--reference",
            str(reference),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
    )
    writer.communicate(text, timeout=120)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert out.decode().split("\n")[:-1] == [t.text for t in translator.translate(lines)]


@pytest.mark.slow
def test_output_to_dev_stdout_writes_the_device(run, translator):
    proc = _script(run, "--output", "/dev/stdout", input=f"{run['test'][0][0]}\n{run['test'][1][0]}\n".encode())
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert proc.stdout.decode() == "".join(
        t + "\n" for t in [t.text for t in translator.translate([run["test"][0][0], run["test"][1][0]])]
    )


def test_output_to_dev_null_keeps_the_device(run):
    import stat

    status, out, err = cli(["--model", run["dir"], "--output", "/dev/null", run["test"][0][0]])
    assert status == 0, err
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_output_file_gets_the_plain_mode(run, tmp_path):
    old = os.umask(0o022)
    try:
        status, out, err = cli(["--model", run["dir"], "--output", tmp_path / "out.de", run["test"][0][0]])
    finally:
        os.umask(old)
    assert status == 0, err
    assert os.stat(tmp_path / "out.de").st_mode & 0o777 == 0o644


class InterruptedTTY:
    """A terminal on which the user types some lines and then presses Ctrl-C."""

    def __init__(self, lines):
        self.buffer = self
        self.lines = [line.encode() + b"\n" for line in lines]

    def isatty(self):
        return True

    def readline(self):
        if not self.lines:
            raise KeyboardInterrupt
        return self.lines.pop(0)


def test_interactive_ctrl_c_keeps_the_translations(run, translator, tmp_path):
    sentences = [run["test"][0][0], run["test"][1][0]]
    out_path = tmp_path / "session.de"
    err = io.StringIO()
    status = translate.main(
        ["--model", str(run["dir"]), "--output", str(out_path)],
        stdin=InterruptedTTY(sentences),
        stdout=io.StringIO(),
        stderr=err,
    )
    assert status == 130
    assert out_path.read_text(encoding="utf-8") == "".join(
        t + "\n" for t in [t.text for t in translator.translate(sentences)]
    )
    assert f"2 translation(s) kept in {out_path}" in err.getvalue()
    assert [p.name for p in tmp_path.iterdir()] == ["session.de"]


def test_over_long_lines_are_cut_with_a_warning_not_dropped(run, translator, tmp_path):
    """A 5,000-token line with --attention-plot: translated from its first decode.max_input_len tokens, a
    warning names its line, every line gets its output line, and the attention buffers stay bounded."""
    from nmt.decode.translator import ATTENTION_BUFFER_BYTES

    long_line = " ".join(["twenty-one"] * 2000)  # several pieces a word: well over 5,000 tokens
    lines = [run["test"][0][0], long_line, run["test"][1][0]]
    path = tmp_path / "in.en"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    plots = tmp_path / "plots"
    status, out, err = cli(["--model", run["dir"], "--input", path, "--attention-plot", plots, "--beam-size", 2])
    assert status == 0, err
    assert out.split("\n")[:-1][0::2] == [
        t.text for t in translator.translate([lines[0], lines[2]], translator.settings(beam_size=2))
    ]
    assert len(out.split("\n")) == 4
    (warning,) = [line for line in err.splitlines() if line.startswith("warning:")]
    assert f"{path}, line 2:" in warning and "translated the first 256" in warning
    assert sorted(p.name for p in plots.iterdir()) == ["000000.png", "000001.png", "000002.png"]
    (cut,) = translator.translate([long_line], translator.settings(beam_size=2))
    assert cut.truncated_from > 5000 and len(cut.source_ids) == 256
    assert cut.source_ids == translator.tokenizers.src.encode(long_line)[:256]

    # the batches of a search with attention are cut to the buffer budget
    from nmt.decode.graph import plan_batches

    settings = translator.settings(5, 5, None, attention=True)
    _, bounds = plan_batches(np.array([256] * 200), 200, 0, settings)
    parts = np.diff(bounds.numpy())
    assert parts.sum() == 200 and len(parts) > 1
    out_len = settings.max_len_a * 256 + settings.max_len_b + 2
    assert all(4 * p * (5 + 5) * out_len * 256 <= ATTENTION_BUFFER_BYTES for p in parts)


@pytest.mark.slow
def test_line_alignment_under_load(run, tmp_path):
    """tests/harness/stress_translate.py at a reduced size: hostile lines (empty, blank, 1,000+ tokens, CR, NUL,
    U+2028, U+0085, control characters, combining marks, right-to-left text, emoji, no final newline)
    through a file and a pipe give one output line per input line, each its own line's translation,
    and peak memory does not grow with the input. The full size (100,000 lines) is the script's default."""
    lines, small = (1500, 150) if CI else (5000, 500)
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "tests" / "harness" / "stress_translate.py"),
            "--model",
            str(run["dir"]),
            "--lines",
            str(lines),
            "--small-lines",
            str(small),
            "--work-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "result: every line aligned, memory flat" in proc.stdout
    assert "over-long lines cut with a warning" in proc.stdout and " 0 over-long" not in proc.stdout
    assert len((tmp_path / "out_pipe.txt").read_text(encoding="utf-8").split("\n")) == lines + 1

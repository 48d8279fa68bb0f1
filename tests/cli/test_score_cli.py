"""`python -m nmt score`: one line per pair, the score translate.py prints for the same translation with
--length-penalty 0, standard input, and one-line errors for bad input."""

from __future__ import annotations

import io
import math
import subprocess
import sys
from pathlib import Path

import pytest

from nmt.cli import score as score_cli
from nmt.cli import translate as translate_cli

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run(translator_run):
    return translator_run


def cli(main, argv, stdin: bytes = b""):
    """(exit status, stdout, stderr) of a command's main(argv), in process."""
    out, err = io.StringIO(), io.StringIO()
    status = main(
        [str(a) for a in argv], stdin=io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"), stdout=out, stderr=err
    )
    return status, out.getvalue(), err.getvalue()


def write(path: Path, lines) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_scores_equal_translate_py_with_length_penalty_0(run, tmp_path):
    """The issue's contract: for a translation that ended with EOS, the log-probability `nmt score` writes
    is the score translate.py --nbest 1 --length-penalty 0 printed for it."""
    sources = [s for s, _ in run["test"][:20]]
    source_file = write(tmp_path / "src.en", sources)
    status, out, err = cli(
        translate_cli.main,
        ["--model", run["dir"], "--input", source_file, "--nbest", 1, "--beam-size", 3, "--length-penalty", 0],
    )
    assert status == 0, err
    rows = [line.split(" ||| ") for line in out.splitlines()]
    assert [int(r[0]) for r in rows] == list(range(len(sources)))
    hyp_file = write(tmp_path / "hyp.de", [r[1] for r in rows])
    status, out, err = cli(score_cli.main, ["--model", run["dir"], "--source", source_file, "--target", hyp_file])
    assert status == 0, err
    scored = [line.split("\t") for line in out.splitlines()]
    assert len(scored) == len(sources)
    from nmt import config
    from nmt.text.tokenizer import Tokenizers

    decode = config.load(Path(run["dir"]) / "config.yaml").decode
    tokenizers = Tokenizers.load(Path(run["dir"]) / "tokenizer")
    compared = 0
    for source, (_, _, printed), (log_prob, per_token, length) in zip(sources, rows, scored):
        limit = math.floor(decode.max_len_a * len(tokenizers.src.encode(source)) + decode.max_len_b + 1e-3)
        if int(length) - 1 >= limit:  # stopped at the length limit, without EOS: another sequence
            continue
        compared += 1
        assert float(log_prob) == pytest.approx(float(printed), abs=2e-5)
        assert float(per_token) == pytest.approx(float(log_prob) / int(length), abs=1e-6)
    assert compared >= 15


def test_standard_input_output_file_and_empty_targets(run, tmp_path):
    sources = [s for s, _ in run["test"][:5]]
    targets = [t for _, t in run["test"][:4]] + [""]
    source_file = write(tmp_path / "src.en", sources)
    output = tmp_path / "scores.tsv"
    status, out, err = cli(
        score_cli.main,
        ["--model", run["dir"], "--source", source_file, "--target", "-", "--output", output],
        stdin="".join(t + "\n" for t in targets).encode("utf-8"),
    )
    assert (status, out, err) == (0, "", "")
    lines = [line.split("\t") for line in output.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 5 and lines[-1][2] == "1"  # the empty target: EOS alone
    assert all(float(lp) <= 0 and not math.isnan(float(lp)) for lp, _, _ in lines)


@pytest.mark.parametrize(
    "case, fragment",
    [
        ("mismatch", "has 3 lines but --target"),
        ("missing", "missing.de"),
        ("both stdin", "only one of them can be standard input"),
        ("batch size", "--batch-size: received 0, expected a positive integer"),
        ("no run", "no such run directory"),
    ],
)
def test_bad_input_is_one_line(run, tmp_path, case, fragment):
    source_file = write(tmp_path / "src.en", ["one", "two", "three"])
    target_file = write(tmp_path / "tgt.de", ["eins", "zwei"])
    argv = {
        "mismatch": ["--model", run["dir"], "--source", source_file, "--target", target_file],
        "missing": ["--model", run["dir"], "--source", source_file, "--target", tmp_path / "missing.de"],
        "both stdin": ["--model", run["dir"], "--source", "-", "--target", "-"],
        "batch size": ["--model", run["dir"], "--source", source_file, "--target", source_file, "--batch-size", 0],
        "no run": ["--model", tmp_path / "nowhere", "--source", source_file, "--target", target_file],
    }[case]
    status, out, err = cli(score_cli.main, argv)
    assert status == 2 and out == "" and err.startswith("error: ") and err.count("\n") == 1, err
    assert fragment in err, err


def test_python_m_nmt_score_runs_as_a_command(run, tmp_path):
    source_file = write(tmp_path / "src.en", [run["test"][0][0]])
    target_file = write(tmp_path / "tgt.de", [run["test"][0][1]])
    proc = subprocess.run(
        [sys.executable, "-m", "nmt", "score", "--model", run["dir"], "--source", source_file, "--target", target_file],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    log_prob, per_token, length = proc.stdout.split("\t")
    assert float(log_prob) <= 0 and int(length) >= 2

"""nmt.text.evaluation and scripts/evaluate.py against the sacrebleu command line on the same files."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nmt.errors import UserError
from nmt.text import evaluation

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "evaluate.py"

REFERENCES = [
    "Ein Mann in einem blauen Hemd steht auf einer Leiter und putzt ein Fenster.",
    "Zwei Kinder spielen im Sand am Strand.",
    "Eine Frau mit Hut verkauft Obst auf einem Markt.",
    "Ein schwarzer Hund rennt über eine grüne Wiese.",
    "Drei Männer arbeiten an einem Gebäude in der Stadt.",
    "Ein Mädchen in einem rosa Kleid fährt Fahrrad.",
    "Die Musiker spielen auf der Bühne vor vielen Zuschauern.",
    "Ein älterer Herr liest im Park eine Zeitung.",
    "„Zwei Hunde“ spielen mit einem Ball – im Schnee.",
    "Ein Junge springt um 15:30 Uhr ins Schwimmbecken.",
    "Eine Gruppe von Menschen wartet an der Bushaltestelle.",
    "Ein Koch bereitet in einer Küche das Essen zu.",
]
SECOND_REFERENCES = [
    "Ein Mann im blauen Hemd putzt auf einer Leiter ein Fenster.",
    "Zwei Kinder spielen am Strand im Sand.",
    "Eine Frau mit einem Hut verkauft auf dem Markt Obst.",
    "Ein schwarzer Hund läuft über eine Wiese.",
    "Drei Arbeiter sind an einem Gebäude in der Stadt beschäftigt.",
    "Ein Mädchen im rosa Kleid fährt auf einem Fahrrad.",
    "Musiker spielen vor einem großen Publikum auf einer Bühne.",
    "Ein alter Mann liest eine Zeitung im Park.",
    "Zwei Hunde spielen im Schnee mit einem Ball.",
    "Ein Junge springt um halb vier in das Becken.",
    "Menschen warten an einer Bushaltestelle.",
    "Ein Koch kocht in der Küche.",
]
BASELINE = [
    "Ein Mann mit blauem Hemd steht auf der Leiter und putzt Fenster.",
    "Zwei Kinder spielen in dem Sand.",
    "Eine Frau verkauft Obst auf dem Markt.",
    "Ein Hund rennt über die Wiese.",
    "Männer arbeiten an einem Haus.",
    "Ein Mädchen fährt Fahrrad.",
    "Musiker spielen auf einer Bühne.",
    "Ein Mann liest eine Zeitung.",
    "Zwei Hunde spielen mit Ball im Schnee.",
    "Ein Junge springt ins Wasser.",
    "Leute warten an der Haltestelle.",
    "Ein Koch kocht Essen.",
]
SYSTEM = [
    "Ein Mann in einem blauen Hemd steht auf einer Leiter und putzt das Fenster.",
    "Zwei Kinder spielen im Sand am Strand.",
    "Eine Frau mit Hut verkauft Obst auf dem Markt.",
    "Ein schwarzer Hund rennt über eine Wiese.",
    "Drei Männer arbeiten an einem Gebäude.",
    "Ein Mädchen in einem rosa Kleid fährt ein Fahrrad.",
    "Die Musiker spielen auf der Bühne vor Zuschauern.",
    "Ein alter Herr liest im Park eine Zeitung.",
    "„Zwei Hunde“ spielen mit einem Ball im Schnee.",
    "Ein Junge springt um 15:30 Uhr ins Becken.",
    "Eine Gruppe Menschen wartet an der Bushaltestelle.",
    "Ein Koch bereitet das Essen zu.",
]


def write(path: Path, lines) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def sacrebleu_cli(*args, seed: int = 12345) -> str:
    env = dict(os.environ, NO_COLOR="1", SACREBLEU_SEED=str(seed))
    done = subprocess.run(
        [sys.executable, "-m", "sacrebleu", *map(str, args), "-q"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def run_script(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True)


def check_against_cli(references: list[Path], hypotheses: Path):
    """Our API, our script and the sacrebleu command line agree on scores and signatures."""
    cli = json.loads(sacrebleu_cli(*references, "-i", hypotheses, "-m", "bleu", "chrf", "-w", 8))  # a JSON list
    ours = evaluation.score(evaluation.read_lines(hypotheses), [evaluation.read_lines(path) for path in references])
    assert [entry["name"] for entry in cli] == ["BLEU", "chrF2"]
    for key, entry in zip(("bleu", "chrf"), cli):
        assert round(ours.results[key].score, 8) == pytest.approx(entry["score"], abs=1e-8)
        assert ours.signatures[key] == entry["signature"]
    assert ours.bleu == ours.results["bleu"].score and ours.chrf == ours.results["chrf"].score
    script = run_script(*sum((["--ref", path] for path in references), []), hypotheses, "--json")
    assert script.returncode == 0, script.stderr
    reported = json.loads(script.stdout)["systems"][str(hypotheses)]
    for key in ("bleu", "chrf"):
        assert reported[key]["score"] == ours.results[key].score
        assert reported[key]["signature"] == ours.signatures[key]
    return ours


# ------------------------------------------------------------------------------------------------------ scores


@pytest.mark.parametrize("n_refs", [1, 2])
def test_scores_and_signatures_equal_the_sacrebleu_command_line(tmp_path, n_refs):
    references = [write(tmp_path / "ref.de", REFERENCES), write(tmp_path / "ref2.de", SECOND_REFERENCES)][:n_refs]
    ours = check_against_cli(references, write(tmp_path / "hyp.de", BASELINE))
    assert f"nrefs:{n_refs}" in ours.signatures["bleu"]
    assert 0 < ours.bleu < 100 and 0 < ours.chrf < 100


def test_scores_equal_the_command_line_on_a_multi30k_slice(tmp_path, multi30k_dir):
    data = multi30k_dir  # conftest: skipped where absent, a failure under CI=true
    references = evaluation.read_lines(data / "val.de")[:300]
    # A plausible "system": drop a word here, swap two there, keep some sentences as they are.
    hypotheses = []
    for i, line in enumerate(references):
        words = line.split()
        if i % 3 == 0 and len(words) > 3:
            del words[2]
        elif i % 3 == 1 and len(words) > 4:
            words[1], words[3] = words[3], words[1]
        hypotheses.append(" ".join(words))
    ours = check_against_cli([write(tmp_path / "ref.de", references)], write(tmp_path / "hyp.de", hypotheses))
    assert 30 < ours.bleu < 100


def test_lowercase_bleu_equals_the_command_line_lc(tmp_path):
    """--lowercase is sacrebleu's -lc: case-insensitive BLEU with signature case:lc, chrF unchanged."""
    # Every other sentence in upper case: cased BLEU loses those n-grams, lowercased BLEU keeps them.
    shouted = [line.upper() if i % 2 else line for i, line in enumerate(SYSTEM)]
    ref, hyp = write(tmp_path / "ref.de", REFERENCES), write(tmp_path / "hyp.de", shouted)
    cli = json.loads(sacrebleu_cli(ref, "-i", hyp, "-m", "bleu", "chrf", "-lc", "-w", 8))
    ours = evaluation.score(shouted, REFERENCES, lowercase=True)
    assert round(ours.bleu, 8) == pytest.approx(cli[0]["score"], abs=1e-8)
    assert ours.signatures["bleu"] == cli[0]["signature"] and "case:lc" in ours.signatures["bleu"]
    assert round(ours.chrf, 8) == pytest.approx(cli[1]["score"], abs=1e-8)
    assert ours.signatures["chrf"] == cli[1]["signature"]
    cased = evaluation.score(shouted, REFERENCES)
    assert ours.bleu > cased.bleu + 10 and ours.chrf == cased.chrf
    assert ours.bleu == pytest.approx(evaluation.score(SYSTEM, REFERENCES, lowercase=True).bleu)  # case is forgiven
    script = run_script("--ref", ref, hyp, "--lowercase", "--json")
    assert script.returncode == 0, script.stderr
    assert json.loads(script.stdout)["systems"][str(hyp)]["bleu"]["signature"] == cli[0]["signature"]
    paired = evaluation.paired_bootstrap(BASELINE, shouted, REFERENCES, n_samples=50, lowercase=True)
    assert "case:lc" in paired.metrics["bleu"].signature
    assert paired.metrics["bleu"].system == pytest.approx(ours.bleu)


def test_format_prints_score_lines_with_signatures():
    scores = evaluation.score(BASELINE, REFERENCES)
    lines = scores.format().splitlines()
    assert lines[0].startswith("BLEU = ") and lines[0].endswith(scores.signatures["bleu"])
    assert lines[1].startswith("chrF2 = ") and lines[1].endswith(scores.signatures["chrf"])
    only_bleu = evaluation.score(BASELINE, [REFERENCES], metrics=("bleu",))
    assert only_bleu.chrf is None and only_bleu.bleu == pytest.approx(scores.bleu)


# ---------------------------------------------------------------------------------------------- paired bootstrap


def parse_paired_table(text: str):
    """Numbers of sacrebleu's --paired-bs text table: {(row, metric): (score, mean, ci)}, p-values, signatures."""
    triples = [tuple(map(float, m)) for m in re.findall(r"(\d+\.\d+) \((\d+\.\d+) ± (\d+\.\d+)\)", text)]
    p_values = [float(p) for p in re.findall(r"p = (\d+\.\d+)", text)]
    signatures = dict(re.findall(r"^ - (BLEU|chrF2)\s+(\S+)$", text, flags=re.M))
    return triples, p_values, signatures


@pytest.mark.parametrize("seed", [12345, 7])
def test_paired_bootstrap_equals_the_command_line(tmp_path, seed):
    ref = write(tmp_path / "ref.de", REFERENCES)
    base, system = write(tmp_path / "base.de", BASELINE), write(tmp_path / "sys.de", SYSTEM)
    text = sacrebleu_cli(
        ref,
        "-i",
        base,
        system,
        "-m",
        "bleu",
        "chrf",
        "--paired-bs",
        "--paired-bs-n",
        300,
        "-f",
        "text",
        "-w",
        4,
        seed=seed,
    )
    triples, p_values, signatures = parse_paired_table(text)
    ours = evaluation.paired_bootstrap(BASELINE, SYSTEM, REFERENCES, n_samples=300, seed=seed)
    bleu, chrf = ours.metrics["bleu"], ours.metrics["chrf"]
    expected = [
        (bleu.baseline, bleu.baseline_mean, bleu.baseline_ci),
        (chrf.baseline, chrf.baseline_mean, chrf.baseline_ci),
        (bleu.system, bleu.system_mean, bleu.system_ci),
        (chrf.system, chrf.system_mean, chrf.system_ci),
    ]
    assert triples == [tuple(round(x, 4) for x in row) for row in expected]
    assert p_values == [round(bleu.p_value, 4), round(chrf.p_value, 4)]
    assert signatures == {"BLEU": bleu.signature, "chrF2": chrf.signature}
    assert f"seed:{seed}" in bleu.signature and "bs:300" in bleu.signature

    script = run_script("--ref", ref, base, system, "--paired-bs-n", 300, "--seed", seed, "--json")
    assert script.returncode == 0, script.stderr
    reported = json.loads(script.stdout)["paired_bootstrap"]["metrics"]
    assert reported["bleu"]["p_value"] == bleu.p_value and reported["chrf"]["system_ci"] == chrf.system_ci
    text = run_script("--ref", ref, base, system, "--paired-bs-n", 300, "--seed", seed)
    assert text.returncode == 0 and f"p = {bleu.p_value:.4f}" in text.stdout


def test_paired_bootstrap_on_multi30k_slice_equals_the_command_line(tmp_path, multi30k_dir):
    data = multi30k_dir  # conftest: skipped where absent, a failure under CI=true
    references = evaluation.read_lines(data / "test2016.de")[:200]
    base = [" ".join(line.split()[:-2]) for line in references]
    system = [" ".join(line.split()[1:]) if i % 2 else line for i, line in enumerate(references)]
    paths = [write(tmp_path / name, lines) for name, lines in (("ref", references), ("base", base), ("sys", system))]
    text = sacrebleu_cli(
        paths[0], "-i", *paths[1:], "-m", "bleu", "--paired-bs", "--paired-bs-n", 200, "-f", "text", "-w", 4
    )
    triples, p_values, _ = parse_paired_table(text)
    ours = evaluation.paired_bootstrap(base, system, references, metrics=("bleu",), n_samples=200).metrics["bleu"]
    assert triples[0] == tuple(round(x, 4) for x in (ours.baseline, ours.baseline_mean, ours.baseline_ci))
    assert triples[1] == tuple(round(x, 4) for x in (ours.system, ours.system_mean, ours.system_ci))
    assert p_values == [round(ours.p_value, 4)]


# ---------------------------------------------------------------------------------------------- user errors


def test_count_mismatch_is_a_one_line_user_error():
    with pytest.raises(UserError, match=r"3 hypotheses, 2 references"):
        evaluation.score(BASELINE[:3], REFERENCES[:2])
    with pytest.raises(UserError, match=r"3 hypotheses, 4 references \(reference set 2 of 2\)"):
        evaluation.score(BASELINE[:3], [REFERENCES[:3], REFERENCES[:4]])
    with pytest.raises(UserError, match="metric 'ter'"):
        evaluation.score(BASELINE, REFERENCES, metrics=("ter",))
    with pytest.raises(UserError, match="at least one sentence"):
        evaluation.score([], [])
    with pytest.raises(UserError, match="12 baseline hypotheses, 11 system"):
        evaluation.paired_bootstrap(BASELINE, SYSTEM[:11], REFERENCES)


def test_read_lines_follows_the_command_line_conventions(tmp_path):
    path = tmp_path / "f.txt"
    path.write_bytes("\ufeffa b  \r\nc\n\nd\t".encode("utf-8"))
    assert evaluation.read_lines(path) == ["\ufeffa b", "c", "", "d"]
    path.write_bytes(b"")
    assert evaluation.read_lines(path) == []


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_script_reports_bad_files_in_one_line(tmp_path):
    ref = write(tmp_path / "ref.de", REFERENCES)
    assert_one_line_error(run_script("--ref", ref, tmp_path / "missing.de"), "missing.de", "no such file")
    bad = tmp_path / "bad.de"
    bad.write_bytes("eins\nzwei\ndr\xe4i\n".encode("latin-1"))
    assert_one_line_error(run_script("--ref", ref, bad), "bad.de", "line 3", "UTF-8")
    short = write(tmp_path / "short.de", BASELINE[:5])
    assert_one_line_error(run_script("--ref", ref, short), "ref.de has 12 lines", "short.de has 5 lines")
    assert_one_line_error(
        run_script("--ref", ref, "--ref", short, write(tmp_path / "h.de", BASELINE)),
        "short.de has 5 lines",
        "h.de has 12 lines",
    )


def test_script_text_output_for_one_system(tmp_path):
    ref = write(tmp_path / "ref.de", REFERENCES)
    result = run_script("--ref", ref, write(tmp_path / "hyp.de", SYSTEM))
    assert result.returncode == 0, result.stderr
    assert result.stdout == evaluation.score(SYSTEM, REFERENCES).format() + "\n"

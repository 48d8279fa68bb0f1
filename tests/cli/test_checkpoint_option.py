"""translate.py --checkpoint and nmt score --checkpoint (nmt.checkpoint.CheckpointChoice) on the tiny run,
which keeps its last two epoch checkpoints (train.keep_checkpoints=2 in tests.helpers.TINY).

Oracles: model.keras is the best checkpoint (train.py saved it from there), so --checkpoint best translates
exactly as the default; the average's weights are the mean of the kept checkpoints' weights, each loaded
alone by its step; a missing checkpoint is one line before TensorFlow loads."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from nmt.cli import score as score_cli
from nmt.cli import translate as translate_cli

SOURCES = ["three hundred and four", "seventy", "one thousand two hundred", "nine"]


def translate(run, *options) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = translate_cli.main(
        ["--model", str(run), *options, *SOURCES], stdin=io.StringIO(), stdout=stdout, stderr=stderr
    )
    return code, stdout.getvalue(), stderr.getvalue()


def kept(run) -> list[str]:
    return json.loads((run / "checkpoints" / "last.json").read_text(encoding="utf-8"))["kept"]


def test_best_translates_as_model_keras(tiny_run):
    best = json.loads((tiny_run / "checkpoints" / "best.json").read_text(encoding="utf-8"))["dir"]
    assert json.loads((tiny_run / "results.json").read_text(encoding="utf-8"))["weights"] == f"best checkpoint {best}"
    code, default, _ = translate(tiny_run)
    assert code == 0
    code, chosen, stderr = translate(tiny_run, "--checkpoint", "best")
    assert code == 0 and chosen == default and len(default.splitlines()) == len(SOURCES)
    assert stderr.splitlines()[0] == f"--checkpoint best: {tiny_run}: {best}"


def test_average_holds_the_mean_of_the_kept_checkpoints(tiny_run):
    from nmt.decode.translator import load_model

    names = kept(tiny_run)
    assert len(names) == 2
    steps = [name.removeprefix("ckpt-").split(".")[0].lstrip("0") for name in names]
    singles = [[v.numpy() for v in load_model(tiny_run, step).weights] for step in steps]
    average = load_model(tiny_run, "average")
    for variable, *values in zip(average.weights, *singles):
        np.testing.assert_allclose(variable.numpy(), np.mean(values, axis=0), rtol=1e-6, atol=1e-7)
    assert any(not np.array_equal(a, b) for a, b in zip(*singles))  # two different checkpoints were averaged
    code, out, stderr = translate(tiny_run, "--checkpoint", "average")
    assert code == 0 and len(out.splitlines()) == len(SOURCES)
    assert stderr.splitlines()[0] == f"--checkpoint average: {tiny_run}: {', '.join(names)}"


@pytest.mark.parametrize(
    "choice, message",
    [
        ("newest", "error: --checkpoint: received 'newest', expected best, last, average or a step number"),
        ("7", "error: --checkpoint 7: no checkpoint of step 7 in {checkpoints} (steps: "),
    ],
)
def test_a_checkpoint_not_there_is_one_line_for_translate_and_score(tiny_run, choice, message, tmp_path):
    message = message.format(checkpoints=tiny_run / "checkpoints")
    code, out, stderr = translate(tiny_run, "--checkpoint", choice)
    assert code == 2 and out == "" and len(stderr.splitlines()) == 1 and stderr.startswith(message), stderr
    source, target = tmp_path / "src", tmp_path / "tgt"
    source.write_text("seventy\n", encoding="utf-8")
    target.write_text("siebzig\n", encoding="utf-8")
    stderr = io.StringIO()
    argv = ["--model", str(tiny_run), "--checkpoint", choice, "--source", str(source), "--target", str(target)]
    assert score_cli.main(argv, stdout=io.StringIO(), stderr=stderr) == 2
    assert len(stderr.getvalue().splitlines()) == 1 and stderr.getvalue().startswith(message), stderr.getvalue()


def test_score_with_a_checkpoint_and_an_ensemble_of_itself(tiny_run, tmp_path):
    source, target = tmp_path / "src", tmp_path / "tgt"
    source.write_text("seventy\nnine\n", encoding="utf-8")
    target.write_text("siebzig\nneun\n", encoding="utf-8")
    outputs = []
    for models in (["--model", str(tiny_run)], ["--model", str(tiny_run), "--model", str(tiny_run)]):
        stdout, stderr = io.StringIO(), io.StringIO()
        argv = [*models, "--checkpoint", "last", "--source", str(source), "--target", str(target)]
        assert score_cli.main(argv, stdout=stdout, stderr=stderr) == 0, stderr.getvalue()
        outputs.append([[float(x) for x in line.split("\t")] for line in stdout.getvalue().splitlines()])
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-5, atol=1e-5)

"""Ensembles (nmt.decode.ensemble): the averaged step against the members' own steps, a model with itself
against the model alone, the export, and a vocabulary mismatch as one line."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from nmt.errors import UserError


@pytest.fixture(scope="module")
def run(translator_run):
    return translator_run


@pytest.fixture(scope="module")
def other_run(run, tmp_path_factory):
    """A copy of the run with other weights (the same tokenizer): a second member that disagrees."""
    from nmt.decode.translator import load_model

    directory = tmp_path_factory.mktemp("ensemble") / "other"
    shutil.copytree(run["dir"], directory)
    model = load_model(directory)
    rng = np.random.default_rng(0)
    for weight in model.weights:
        value = weight.numpy()
        weight.assign(value * (1 + 0.3 * rng.standard_normal(value.shape)).astype(value.dtype))
    (directory / "model.keras").unlink()
    model.save(directory / "model.keras")
    return directory


def test_the_averaged_step_is_the_mean_of_the_members_probabilities(run, other_run):
    from nmt.decode.translator import load_run

    ensemble = load_run(run["dir"], ensemble=[other_run])
    members = [load_run(run["dir"]).model, load_run(other_run).model]
    tok = ensemble.tokenizers
    sources = [s for s, _ in run["test"][:4]]
    ids = tf.ragged.constant([tok.src.encode(s) for s in sources]).to_tensor()
    state = ensemble.model.encode(ids)
    states = [m.encode(ids) for m in members]
    tokens = tf.fill([len(sources)], 2)  # BOS
    for _ in range(4):  # a few steps, fed the first member's greedy choices
        log_probs, state, attention = ensemble.model.decode_step(tokens, state)
        steps = [m.decode_step(tokens, s) for m, s in zip(members, states)]
        states = [s for _, s, _ in steps]
        probs = np.mean([np.exp(lp.numpy().astype(np.float64)) for lp, _, _ in steps], axis=0)
        np.testing.assert_allclose(log_probs.numpy(), np.log(probs), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(attention.numpy(), np.mean([a.numpy() for _, _, a in steps], axis=0), atol=1e-6)
        tokens = tf.argmax(steps[0][0], axis=-1, output_type=tf.int32)


def test_a_model_with_itself_translates_as_the_model_alone(run):
    from nmt.decode.translator import load_run

    alone, twice = load_run(run["dir"]), load_run(run["dir"], ensemble=[run["dir"]])
    sources = [s for s, _ in run["test"][:16]]
    for settings in (alone.settings(beam_size=1), alone.settings(beam_size=3, nbest=2)):
        a, b = alone.translate(sources, settings), twice.translate(sources, settings)
        assert [[h.text for h in t.hypotheses] for t in a] == [[h.text for h in t.hypotheses] for t in b]
        np.testing.assert_allclose(
            [[h.score for h in t.hypotheses] for t in a], [[h.score for h in t.hypotheses] for t in b], atol=1e-5
        )
    np.testing.assert_allclose(
        [s.log_prob for s in alone.score(sources, sources)],
        [s.log_prob for s in twice.score(sources, sources)],
        atol=1e-4,
    )


def test_the_export_of_an_ensemble_translates_as_in_process(run, other_run, tmp_path):
    import tensorflow_text  # noqa: F401  (the SentencePiece ops of the SavedModel)

    from nmt.decode.translator import export_translator, load_run

    translator = load_run(run["dir"], ensemble=[other_run])
    sources = [s for s, _ in run["test"][:10]]
    export_translator(translator, tmp_path / "export")
    serve = tf.saved_model.load(str(tmp_path / "export")).signatures["serving_default"]
    got = [t.decode("utf-8") for t in serve(sentences=tf.constant(sources))["translations"].numpy()]
    assert got == [t.text for t in translator.translate(sources)]


def test_another_vocabulary_is_one_line(run, tmp_path):
    from nmt.cli import translate as translate_cli
    from nmt.decode.translator import load_run

    foreign = tmp_path / "foreign"
    shutil.copytree(run["dir"], foreign)
    meta = next(p for p in sorted((foreign / "tokenizer").iterdir()) if p.suffix == ".json")
    meta.write_text(meta.read_text(encoding="utf-8") + " ", encoding="utf-8")
    with pytest.raises(UserError, match=f"--model {foreign}: its tokenizer differs from that of"):
        load_run(run["dir"], ensemble=[foreign])
    out, err = io.StringIO(), io.StringIO()
    status = translate_cli.main(["--model", str(run["dir"]), "--model", str(foreign), "one"], stdout=out, stderr=err)
    assert status == 2 and err.getvalue().count("\n") == 1 and "its tokenizer differs" in err.getvalue()


def test_translate_py_with_the_same_model_twice_writes_the_same_lines(run):
    from nmt.cli import translate as translate_cli

    sentences = [s for s, _ in run["test"][:6]]
    outputs = []
    for models in ([run["dir"]], [run["dir"], run["dir"]]):
        out, err = io.StringIO(), io.StringIO()
        argv = [a for m in models for a in ("--model", str(m))] + ["--beam-size", "2", *sentences]
        assert translate_cli.main(argv, stdout=out, stderr=err) == 0, err.getvalue()
        outputs.append(out.getvalue())
    assert outputs[0] == outputs[1] and outputs[0].count("\n") == len(sentences)
    assert Path(run["dir"]).is_dir()

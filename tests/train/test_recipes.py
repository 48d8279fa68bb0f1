"""train.py with settings beyond the defaults: mixed_bfloat16 with XLA, and the length penalty
tuned on dev.

Trainings run as subprocesses of train.py, as a user runs them (tests/helpers.py); tiny_run, the
tiny config's run made once per test session, gives the reference losses and the tokenizer.
"""

import io
from pathlib import Path

import pytest

from tests.helpers import TINY, fresh_run, run_train, step_losses

ROOT = Path(__file__).resolve().parents[2]

# Each test runs train.py end to end.
pytestmark = pytest.mark.slow


def test_length_penalty_tuned_on_dev_is_the_best_and_the_run_default(tmp_path, tiny_run, monkeypatch):
    """decode.tune_length_penalty: the α written is the one whose beam output scores best on dev, by
    sacrebleu over a fresh decoding of the dev set; load_run, translate.py and the export take it;
    --overwrite removes it."""
    import tensorflow as tf
    import yaml

    from nmt import config, rundir
    from nmt.cli import translate as translate_cli
    from nmt.decode.translator import load_run
    from nmt.text import evaluation
    from nmt.text.corpus import Corpus

    monkeypatch.chdir(ROOT)  # where train.py ran: the built-in corpus's relative path
    run = fresh_run(tmp_path, tiny_run, "tuned")
    alphas = [0.0, 1.0, 4.0]
    tune = ["train.eval_max_sentences=80", "decode.beam_size=3", f"decode.tune_length_penalty={alphas}"]
    proc = run_train(run, *TINY, *tune)
    assert proc.returncode == 0, proc.stderr[-3000:]
    tuned = yaml.safe_load((run / "decode_tuned.yaml").read_text(encoding="utf-8"))
    translator = load_run(run)
    dev = list(Corpus(config.load(run / "config.yaml").corpus).dev.pairs())[:80]
    sources, references = [s for s, _ in dev], [t for _, t in dev]
    bleu = {
        a: evaluation.score(
            [t.text for t in translator.translate(sources, translator.settings(length_penalty=a))], references
        ).bleu
        for a in alphas
    }
    assert tuned["dev_bleu"] == {a: round(b, 2) for a, b in bleu.items()}
    assert tuned["length_penalty"] == alphas[max(range(3), key=lambda i: (bleu[alphas[i]], -i))]
    assert translator.decode.length_penalty == tuned["length_penalty"]
    assert f"length penalty {tuned['length_penalty']:g} chosen on dev" in proc.stderr
    exported = tf.saved_model.load(str(run / "export")).signatures["serving_default"]
    got = exported(sentences=tf.constant(sources[:20]))["translations"].numpy()
    assert [t.decode() for t in got] == [t.text for t in translator.translate(sources[:20])]

    request = translate_cli.check_request(translate_cli.build_parser().parse_args(["--model", str(run)]), io.StringIO())
    assert request.settings.length_penalty == tuned["length_penalty"]
    assert rundir.ours("decode_tuned.yaml")  # --overwrite removes it with the rest of the run


def test_mixed_bfloat16_with_xla_trains_and_exports(tmp_path, tiny_run):
    """train.precision=mixed_bfloat16 and train.jit_compile=true: bucketed shapes compile, the loss
    falls like float32's, and the exported model translates."""
    run = fresh_run(tmp_path, tiny_run, "bf16")
    proc = run_train(run, *TINY, "train.precision=mixed_bfloat16", "train.jit_compile=true")
    assert proc.returncode == 0, proc.stderr[-3000:]
    got, want = step_losses(run), step_losses(tiny_run)
    assert sorted(got) == list(range(1, 61))
    assert abs(got[1] - want[1]) < 0.05 * want[1]  # same start, bfloat16 rounding apart
    assert got[1] != want[1]  # ... but apart: the policy was applied
    assert got[60] < got[1]
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the SentencePiece ops the export uses)

    export = tf.saved_model.load(str(run / "export"))
    texts = export.signatures["serving_default"](sentences=tf.constant(["twenty-one dogs .", "seven"]))
    texts = texts["translations"].numpy()
    assert texts.shape == (2,) and all(isinstance(t, bytes) for t in texts)

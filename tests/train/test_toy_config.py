"""The README's main job: train.py on configs/toy.yaml (smaller under CI=true) learns number
translation; beam search against greedy search on the trained model; its export translates."""

import csv
import os
from pathlib import Path

import pytest

from tests.helpers import run_train

ROOT = Path(__file__).resolve().parents[2]
CI = os.environ.get("CI") == "true"


# Beam 5 against greedy on the trained toy model (500 dev sentences): at most this share of sentences
# where beam 5's best scores below greedy's, and beam 5's dev BLEU at least greedy's minus this.
# At the CI size beam 5 was worse on at most 1 of 500 sentences and never below greedy's BLEU on the CPUs
# tried; the bounds leave a margin for others.
BEAM_WORSE_THAN_GREEDY_MAX_SHARE = 0.02


BEAM_BLEU_TOLERANCE = 0.5


@pytest.mark.slow
def test_toy_config_reaches_dev_bleu_90(tmp_path):
    """The README's main job: the toy config (the fast recipe of configs/multi30k.yaml at a small size)
    learns number translation (dev BLEU >= 90), and its exported SavedModel translates as the
    in-process translator does."""
    run = tmp_path / "toy"
    overrides = ["train.verbose=0", "train.tensorboard=false"]
    if CI:
        # 720 steps (about 1.5 passes; dev BLEU at steps 360 and 720): one pass already clears the bar of
        # 90 with several seeds, so the reduced size keeps a margin.
        overrides += ["train.epochs=2", "train.steps_per_epoch=360"]
    proc = run_train(run, *overrides, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(run / "logs" / "train.csv", encoding="utf-8") as f:
        best = max(float(row["val_bleu"]) for row in csv.DictReader(f))
    assert best >= 90.0, proc.stderr[-2000:]

    # On the trained model, beam search (5) against greedy search. Beam search with pruning does not
    # guarantee, sentence by sentence, a score at least greedy's: the greedy path can fall out of the
    # beam before it ends (what it does guarantee is tested in test_search.py against exhaustive
    # search and a reference beam search). The model itself differs between CPUs (float rounding),
    # so assert margins that hold for any such model: beam 5 does at least as well as greedy on
    # almost every sentence, and its corpus BLEU is not below greedy's by more than noise.
    from nmt.decode.translator import load_run
    from nmt.text import evaluation

    translator = load_run(run)
    dev_src = (ROOT / "data" / "numbers" / "dev.en").read_text(encoding="utf-8").splitlines()
    dev_ref = (ROOT / "data" / "numbers" / "dev.de").read_text(encoding="utf-8").splitlines()
    greedy = [t.hypotheses for t in translator.translate(dev_src, translator.settings(beam_size=1, nbest=1))]
    beam = [t.hypotheses for t in translator.translate(dev_src, translator.settings(beam_size=5, nbest=1))]
    worse = [(s, g[0], b[0]) for s, g, b in zip(dev_src, greedy, beam) if b[0].score < g[0].score - 1e-5]
    assert len(worse) <= BEAM_WORSE_THAN_GREEDY_MAX_SHARE * len(dev_src), worse[:5]
    greedy_bleu = evaluation.score([h[0].text for h in greedy], dev_ref).bleu
    beam_bleu = evaluation.score([h[0].text for h in beam], dev_ref).bleu
    assert beam_bleu >= greedy_bleu - BEAM_BLEU_TOLERANCE, (beam_bleu, greedy_bleu, worse[:5])

    # The exported SavedModel (what TF Serving loads) translates like the in-process translator.
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the SentencePiece ops the SavedModel uses)

    sources = dev_src[:50]
    exported = tf.saved_model.load(str(run / "export")).signatures["serving_default"]
    saved = [t.decode("utf-8") for t in exported(sentences=tf.constant(sources))["translations"].numpy()]
    assert saved == [t.text for t in translator.translate(sources)]

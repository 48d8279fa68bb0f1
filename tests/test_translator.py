"""nmt.translator: batching and ordering against per-sentence search, n-best scores, empty inputs,
run-directory errors, the SavedModel export reloaded where `nmt` cannot be imported, attention plots.

The run directory is made here: separate (not joint) SentencePiece models on the built-in numbers
corpus, so a reload that mixes up the two models (tensorflow/text#1304) shows, and a small attention
model trained for a few seconds so that its translations are peaked (no near-ties between beams).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
CI = os.environ.get("CI", "").lower() == "true"

# ------------------------------------------------------------------------------------------ run directory


def numbers_corpus() -> dict:
    from nmt import toy_corpus

    return toy_corpus.generate(seed=5, sizes={"train": 1500, "test": 100}, max_digits=3)


def make_run(directory: Path, architecture: str = "attention", epochs: int | None = None, batch_size: int = 16) -> dict:
    """Writes config.yaml, tokenizer/ and model.keras into directory; returns {"dir", "test": [(en, de)]}.

    epochs=0 saves the untrained model.
    """
    import keras

    from nmt import config as config_module
    from nmt.model import build_model
    from nmt.tokenizer import BOS_ID, EOS_ID, Tokenizers, train_tokenizers

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    corpus = numbers_corpus()
    cfg = config_module.load(
        None,
        [
            f"model.architecture={architecture}",
            "model.embedding_dim=32",
            "model.encoder_units=32",
            "model.decoder_units=64",
            "model.attention_units=32",
            "model.output_dim=64",
            "tokenizer.vocab_size=80",
            "tokenizer.joint=false",
            "tokenizer.byte_fallback=false",
            f"decode.batch_size={batch_size}",
        ],
    )
    train = corpus["train"]
    train_tokenizers(cfg.tokenizer, [s for s, _ in train], [t for _, t in train], directory / "tokenizer")
    tokenizers = Tokenizers.load(directory / "tokenizer")
    model = build_model(cfg.model, tokenizers.src.vocab_size, tokenizers.tgt.vocab_size)
    epochs = 5 if epochs is None else epochs
    if epochs:
        src = [tokenizers.src.encode(s) for s, _ in train]
        tgt = [tokenizers.tgt.encode(t) for _, t in train]
        x = np.zeros([len(src), max(map(len, src))], np.int32)
        y_in = np.zeros([len(src), max(map(len, tgt)) + 1], np.int32)
        y_out = np.zeros_like(y_in)
        for i, (s, t) in enumerate(zip(src, tgt)):
            x[i, : len(s)] = s
            y_in[i, : len(t) + 1] = [BOS_ID] + t
            y_out[i, : len(t) + 1] = t + [EOS_ID]
        keras.utils.set_random_seed(1)
        model.compile(
            optimizer=keras.optimizers.Adam(0.01),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
        )
        model.fit((x, y_in), y_out, batch_size=64, epochs=epochs, verbose=0)
    model.save(directory / "model.keras")
    (directory / "config.yaml").write_text(cfg.to_yaml(), encoding="utf-8")
    return {"dir": directory, "test": corpus["test"]}


def shared_run(tmp_path_factory) -> dict:
    """The trained attention run, made once per test session (the CLI tests use it too)."""
    directory = tmp_path_factory.getbasetemp() / "translator_run" / "attention"
    if not (directory / "model.keras").is_file():
        building = directory.with_name("building")
        made = make_run(building)
        building.rename(directory)
        return dict(made, dir=directory)
    return {"dir": directory, "test": numbers_corpus()["test"]}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return shared_run(tmp_path_factory)


@pytest.fixture(scope="module")
def translator(run):
    from nmt.translator import load_run

    return load_run(run["dir"])


def mixed_sentences(run, n=100):
    """n test sentences of mixed lengths with empty and blank lines among them, not sorted."""
    sentences = [s for s, _ in run["test"][:n]]
    sentences[3:3] = [""]
    sentences[10:10] = ["   "]
    sentences.append("")
    return sentences


_ORACLES = {}


def search_one(translator, sentence: str, beam_size: int, nbest: int, force_beam: bool = False):
    """Oracle: the sentence alone (batch of 1, no sorting, no padding) through Python SentencePiece and
    nmt.search (in a tf.function of its own, for speed). force_beam: beam search even for beam size
    1 (nmt.search.search sends that to greedy search)."""
    import tensorflow as tf

    from nmt.search import beam_search, search

    def beam(model, ids, **options):
        return beam_search(model.decode_step, model.encode(ids), ids, **options)

    key = (id(translator), beam_size, nbest, force_beam)
    if key not in _ORACLES:
        d = translator.decode
        run = beam if force_beam else search
        _ORACLES[key] = tf.function(
            lambda ids: run(
                translator.model,
                ids,
                beam_size=beam_size,
                n_best=nbest,
                alpha=d.length_penalty,
                max_len_a=d.max_len_a,
                max_len_b=d.max_len_b,
            ),
            input_signature=[tf.TensorSpec([1, None], tf.int32)],
        )
    result = _ORACLES[key](tf.constant([translator.tokenizers.src.encode(sentence)], tf.int32))
    texts = [translator.tokenizers.tgt.decode(row) for row in result.tokens.numpy()[0]]
    return texts, result.scores.numpy()[0].tolist()


def assert_same_search(texts, scores, want_texts, want_scores, tol=1e-4):
    """A translation against the per-sentence oracle: the same scores, and the same texts except where
    two hypotheses tie (equal scores within tol). Batched and single-sentence searches round differently
    (padding, other matmul shapes), and the model itself differs between CPUs, so at a tie either text
    is a correct answer; a wrong text with a different score still fails."""
    np.testing.assert_allclose(scores, want_scores, rtol=tol, atol=tol)
    for text, score, want_text, want_score in zip(texts, scores, want_texts, want_scores):
        assert text == want_text or abs(score - want_score) <= tol, (text, score, want_text, want_score)


# ------------------------------------------------------------------------------------------------- tests


def test_make_batches_sorted_bounded_and_complete():
    from nmt.translator import make_batches

    lengths = np.array([5, 0, 3, 9, 3, 1, 0, 7, 2])
    batches = make_batches(lengths, batch_size=3)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == [i for i in range(len(lengths)) if lengths[i] > 0]
    assert list(lengths[flat]) == sorted(lengths[flat])  # shortest first
    assert all(len(b) <= 3 for b in batches)
    assert flat[:3].tolist() == [5, 8, 2]  # stable among equal lengths (2 before 4)
    by_tokens = make_batches(lengths, batch_tokens=10)
    assert sorted(np.concatenate(by_tokens).tolist()) == sorted(flat.tolist())
    for b in by_tokens:
        assert len(b) == 1 or len(b) * lengths[b].max() <= 10
    assert [len(b) for b in make_batches(np.array([50, 60]), batch_tokens=10)] == [1, 1]  # oversized: alone
    assert make_batches(np.array([0, 0]), batch_size=4) == []


def test_load_run_names_what_is_missing(tmp_path):
    from nmt.errors import UserError
    from nmt.translator import load_run

    with pytest.raises(UserError, match="no such run directory"):
        load_run(tmp_path / "nothing")
    (tmp_path / "config.yaml").write_text("decode:\n  beam_size: 2\n")
    with pytest.raises(UserError) as error:
        load_run(tmp_path)
    message = str(error.value)
    assert "tokenizer/" in message and "model.keras" in message and "missing" in message
    assert "\n" not in message


def test_translations_equal_per_sentence_search_in_input_order(translator, run):
    """Sorted, batched (decode.batch_size 16 over 100 sentences) translation against each sentence
    searched alone with Python SentencePiece: same texts and scores, input order kept."""
    sentences = mixed_sentences(run, 40 if CI else 100)
    nbest = translator.translate_nbest(sentences, beam_size=3, nbest=2)
    best = translator.translate(sentences, beam_size=3)
    assert len(nbest) == len(best) == len(sentences)
    for i in range(len(sentences)):
        if not sentences[i].strip():
            assert (
                best[i] == "" and [h.text for h in nbest[i]] == ["", ""] and [h.score for h in nbest[i]] == [0.0, 0.0]
            )
            continue
        texts, scores = search_one(translator, sentences[i], 3, 2)
        assert_same_search([h.text for h in nbest[i]], [h.score for h in nbest[i]], texts, scores)
        assert best[i] == nbest[i][0].text
    # a trained model: most translations are right
    references = [t for _, t in run["test"]]
    plain = [s for s in sentences if s.strip()]
    correct = sum(h == r for h, r in zip([b for b, s in zip(best, sentences) if s.strip()], references))
    assert correct >= len(plain) // 3


def test_batching_does_not_change_results(translator, run):
    sentences = mixed_sentences(run, 30)
    reference = translator.translate(sentences, beam_size=2)
    assert translator.translate(sentences, beam_size=2, batch_size=1) == reference
    assert translator.translate(sentences, beam_size=2, batch_tokens=40) == reference
    streamed = [t.text for t in translator.translate_stream(iter(sentences), chunk_lines=7, beam_size=2)]
    assert streamed == reference


def test_greedy_is_beam_one_and_traced_once(translator, run):
    sentences = [s for s, _ in run["test"][:12]]
    greedy = translator.translate(sentences, beam_size=1, batch_size=5)
    settings = translator.settings(1, 1, None)
    fn = translator.search_function(settings)
    translator.translate(sentences[:3], beam_size=1, batch_size=2)  # other shapes: no new trace
    assert fn.experimental_get_tracing_count() == 1
    scores = [h[0].score for h in translator.translate_nbest(sentences, beam_size=1, batch_size=5)]
    for sentence, text, score in zip(sentences, greedy, scores):
        want_texts, want_scores = search_one(translator, sentence, 1, 1, force_beam=True)
        assert_same_search([text], [score], want_texts, want_scores)


def test_empty_input_and_bad_options(translator):
    from nmt.errors import UserError

    assert translator.translate([]) == []
    assert translator.translate(["", " ", "\t"]) == ["", "", ""]
    for kwargs, pattern in (
        (dict(beam_size=0), "--beam-size"),
        (dict(beam_size=2, nbest=3), "--nbest.*at most the beam size"),
        (dict(length_penalty=-1.0), "--length-penalty"),
        (dict(batch_size=0), "--batch-size"),
        (dict(batch_size=4, batch_tokens=100), "only one"),
    ):
        with pytest.raises(UserError, match=pattern):
            translator.translate_detailed(["one"], **kwargs)


def test_attention_weights_are_distributions(translator, run):
    sentence = run["test"][0][0]
    (translation,) = translator.translate_detailed([sentence], beam_size=2, attention=True)
    best = translation.hypotheses[0]
    assert best.attention.shape == (len(best.tokens) + 1, len(translation.source_ids))  # tokens + EOS
    np.testing.assert_allclose(best.attention.sum(axis=1), 1.0, atol=1e-5)
    assert translation.source_ids == translator.tokenizers.src.encode(sentence)


def test_cho2014_has_no_attention(tmp_path):
    from nmt.errors import UserError
    from nmt.translator import load_run

    cho = load_run(make_run(tmp_path / "cho", architecture="cho2014", epochs=0)["dir"])
    assert cho.translate(["one", ""], beam_size=2)[1] == ""
    with pytest.raises(UserError, match="cho2014.*no attention"):
        cho.translate_detailed(["one"], attention=True)


def test_plot_attention_writes_png(tmp_path):
    import matplotlib.image

    from nmt.plotting import plot_attention

    weights = np.random.default_rng(0).dirichlet(np.ones(4), size=3)
    path = plot_attention(
        weights, ["▁A", "▁man", "▁sleeps", "."], ["▁Ein", "▁Mann", "</s>"], tmp_path / "a" / "x.png", title="t"
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 100
    with pytest.raises(ValueError, match="expected \\(3, 4\\)"):
        plot_attention(weights.T, ["a"] * 4, ["b"] * 3, tmp_path / "y.png")


RELOAD_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    repo = os.path.realpath(sys.argv[1])
    sys.path = [p for p in sys.path if p and os.path.realpath(p) != repo]
    try:
        import nmt
    except ImportError:
        pass
    else:
        raise SystemExit("nmt is importable here: " + nmt.__file__)
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the SentencePiece ops)

    loaded = tf.saved_model.load(sys.argv[2])
    sentences = json.load(open(sys.argv[3], encoding="utf-8"))
    serve = loaded.signatures["serving_default"]
    nbest = loaded.signatures["nbest"]
    out = serve(sentences=tf.constant(sentences))
    lists = nbest(sentences=tf.constant(sentences))
    result = {
        "signatures": sorted(loaded.signatures.keys()),
        "serve_outputs": {k: [v.dtype.name, v.shape.as_list()] for k, v in serve.structured_outputs.items()},
        "nbest_outputs": {k: [v.dtype.name, v.shape.as_list()] for k, v in nbest.structured_outputs.items()},
        "translations": [t.decode("utf-8") for t in out["translations"].numpy()],
        "nbest": [[t.decode("utf-8") for t in row] for row in lists["translations"].numpy()],
        "scores": lists["scores"].numpy().tolist(),
        "empty_batch": serve(sentences=tf.constant([], tf.string))["translations"].shape.as_list(),
    }
    json.dump(result, open(sys.argv[4], "w", encoding="utf-8"))
    """
)


@pytest.mark.slow
def test_export_reloads_without_nmt_and_matches(translator, run, tmp_path):
    from nmt.translator import EXPORT_DIR, export_translator

    path = run["dir"] / EXPORT_DIR
    export_translator(translator, path)
    export_translator(translator, path)  # again: replaces the previous export atomically
    assert (path / "saved_model.pb").is_file()
    assert sorted(p.name for p in path.parent.iterdir() if p.name.startswith(".")) == []  # no temporaries left

    sentences = mixed_sentences(run, 100) + ["one hundred one", "Page  seven   is missing ."]
    (tmp_path / "in.json").write_text(json.dumps(sentences), encoding="utf-8")
    (tmp_path / "reload.py").write_text(RELOAD_SCRIPT, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [
            sys.executable,
            "-s",
            str(tmp_path / "reload.py"),
            str(REPO_ROOT),
            str(path),
            str(tmp_path / "in.json"),
            str(tmp_path / "out.json"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    beam = translator.decode.beam_size
    assert result["signatures"] == ["nbest", "serving_default"]
    assert result["serve_outputs"] == {"translations": ["string", [None]]}
    assert result["nbest_outputs"] == {"translations": ["string", [None, beam]], "scores": ["float32", [None, beam]]}
    assert result["empty_batch"] == [0]

    expected = translator.translate(sentences)
    assert result["translations"] == expected
    assert [result["translations"][i] for i, s in enumerate(sentences) if not s.strip()] == ["", "", ""]
    expected_nbest = translator.translate_nbest(sentences)
    assert result["nbest"] == [[h.text for h in hyps] for hyps in expected_nbest]
    np.testing.assert_allclose(
        result["scores"], [[h.score for h in hyps] for hyps in expected_nbest], rtol=1e-4, atol=1e-4
    )
    assert all(math.isfinite(s) for row in result["scores"] for s in row)

"""nmt.decode.translator: batching and ordering against per-sentence search, n-best scores, empty inputs,
run-directory errors, the SavedModel export reloaded where `nmt` cannot be imported, attention plots.

The run directory (tests/helpers.py, made once per test session): separate (not joint) SentencePiece
models on the built-in numbers corpus, so a reload that mixes up the two models (tensorflow/text#1304)
shows, and a small attention model trained for a few seconds so that its translations are peaked (no
near-ties between beams).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import assert_same_search, make_run, mixed_sentences, search_one

REPO_ROOT = Path(__file__).resolve().parents[2]
CI = os.environ.get("CI", "").lower() == "true"

# ------------------------------------------------------------------------------------------ run directory


@pytest.fixture(scope="module")
def run(translator_run):
    return translator_run


@pytest.fixture(scope="module")
def translator(run):
    from nmt.decode.translator import load_run

    return load_run(run["dir"])


# ------------------------------------------------------------------------------------------------- tests


def expected_batches(lengths, batch_size=None, batch_tokens=None, attention_rows=None):
    """Oracle, in plain Python: the non-empty sources sorted by length (stable), cut into batches of
    batch_size sentences or of at most batch_tokens padded tokens (at least one sentence); then each batch
    into parts of attention_rows(width of the batch) rows."""
    order = sorted((i for i in range(len(lengths)) if lengths[i] > 0), key=lambda i: lengths[i])
    batches, batch = [], []
    for i in order:
        if batch and (
            len(batch) == batch_size or (batch_tokens is not None and (len(batch) + 1) * lengths[i] > batch_tokens)
        ):
            batches.append(batch)
            batch = []
        batch.append(i)
    batches += [batch] if batch else []
    if attention_rows is None:
        return batches
    parts = []
    for batch in batches:
        rows = attention_rows(max(lengths[i] for i in batch))
        parts += [batch[j : j + rows] for j in range(0, len(batch), rows)]
    return parts


def graph_batches(lengths, batch_size=0, batch_tokens=0, settings=None):
    from nmt.decode.graph import plan_batches

    order, bounds = (x.numpy() for x in plan_batches(np.array(lengths, np.int32), batch_size, batch_tokens, settings))
    assert sorted(order.tolist()) == list(range(len(lengths)))
    assert bounds[0] == sum(1 for n in lengths if n == 0) and bounds[-1] == len(lengths)
    return [order[bounds[p] : bounds[p + 1]].tolist() for p in range(len(bounds) - 1)]


def test_graph_batches_equal_a_plain_python_batching():
    """The translation graph's batches (plan_batches, TensorFlow ops) against the oracle above: sorted
    (stable, shortest first), bounded by sentences or padded tokens, empty sources in none, and split for
    the attention buffers."""
    from nmt.decode.graph import ATTENTION_BUFFER_BYTES
    from nmt.decode.search import SearchSettings

    lengths = [5, 0, 3, 9, 3, 1, 0, 7, 2]
    assert (
        graph_batches(lengths, batch_size=3) == expected_batches(lengths, batch_size=3) == [[5, 8, 2], [4, 0, 7], [3]]
    )
    for tokens in (1, 6, 10, 14, 100):
        assert graph_batches(lengths, batch_tokens=tokens) == expected_batches(lengths, batch_tokens=tokens), tokens
    assert graph_batches([50, 60], batch_tokens=10) == [[0], [1]]  # oversized: alone
    assert graph_batches([0, 0], batch_size=4) == [] and graph_batches([], batch_size=4) == []
    rng = np.random.default_rng(3)
    for _ in range(20):
        lengths = rng.integers(0, 40, size=rng.integers(1, 60)).tolist()
        size, tokens = int(rng.integers(1, 9)), int(rng.integers(1, 200))
        assert graph_batches(lengths, batch_size=size) == expected_batches(lengths, batch_size=size)
        assert graph_batches(lengths, batch_tokens=tokens) == expected_batches(lengths, batch_tokens=tokens)
    # with attention: parts within the buffer budget (beams + n-best archive, output length x source length)
    settings = SearchSettings(beam_size=5, nbest=5, max_len_a=1.5, max_len_b=10, attention=True)

    def rows(width):
        return max(1, ATTENTION_BUFFER_BYTES // (4 * (5 + 5) * (int(1.5 * width + 10) + 2) * width))

    lengths = [256] * 200 + [3] * 5 + [40] * 30
    parts = graph_batches(lengths, batch_size=250, settings=settings)
    assert parts == expected_batches(lengths, batch_size=250, attention_rows=rows)
    assert len(parts) == 4
    assert all(4 * len(p) * 10 * (1.5 * 256 + 10 + 2) * 256 <= ATTENTION_BUFFER_BYTES for p in parts)


def test_load_run_names_what_is_missing(tmp_path):
    from nmt.decode.translator import load_run
    from nmt.errors import UserError

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
    nbest = [t.hypotheses for t in translator.translate(sentences, translator.settings(beam_size=3, nbest=2))]
    best = [t.text for t in translator.translate(sentences, translator.settings(beam_size=3))]
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
    reference = [t.text for t in translator.translate(sentences, translator.settings(beam_size=2))]
    assert [
        t.text
        for t in translator.translate(sentences, translator.settings(beam_size=2), translator.batching(batch_size=1))
    ] == reference
    assert [
        t.text
        for t in translator.translate(sentences, translator.settings(beam_size=2), translator.batching(batch_tokens=40))
    ] == reference
    streamed = [
        t.text for t in translator.translate_stream(iter(sentences), translator.settings(beam_size=2), chunk_lines=7)
    ]
    assert streamed == reference


def test_greedy_is_beam_one_and_traced_once(translator, run):
    sentences = [s for s, _ in run["test"][:12]]
    greedy = translator.settings(beam_size=1)
    translations = translator.translate(sentences, greedy, translator.batching(batch_size=5))
    fn = translator.graph.function(greedy)
    translator.translate(sentences[:3], greedy, translator.batching(batch_size=2))  # other shapes and batching
    translator.translate(sentences, greedy, translator.batching(batch_tokens=30))  # ... and no new trace
    assert fn.experimental_get_tracing_count() == 1
    for sentence, translation in zip(sentences, translations):
        want_texts, want_scores = search_one(translator, sentence, 1, 1)
        assert_same_search([translation.text], [translation.score], want_texts, want_scores)


def test_xla_translator_equals_the_plain_one(translator, run):
    """jit_compile: each batch's search under XLA, the batch padded to a bounded set of shapes (filler rows
    repeat a sentence and are dropped): the same n-best lists and scores."""
    from nmt.decode.translator import Translator

    sentences = mixed_sentences(run, 10)
    xla = Translator(translator.model, translator.tokenizers, translator.decode, jit_compile=True)
    got = [
        t.hypotheses for t in xla.translate(sentences, xla.settings(beam_size=2, nbest=2), xla.batching(batch_size=4))
    ]
    want = [
        t.hypotheses
        for t in translator.translate(
            sentences, translator.settings(beam_size=2, nbest=2), translator.batching(batch_size=4)
        )
    ]
    assert len(got) == len(sentences)
    for g, w in zip(got, want):
        assert_same_search([h.text for h in g], [h.score for h in g], [h.text for h in w], [h.score for h in w])


def test_empty_input_and_bad_options(translator):
    from nmt.errors import UserError

    assert [t.text for t in translator.translate([])] == []
    assert [t.text for t in translator.translate(["", " ", "\t"])] == ["", "", ""]
    for make, kwargs, message in (
        ("settings", dict(beam_size=0), "decode.beam_size: received 0, expected a positive integer"),
        ("settings", dict(beam_size=2, nbest=3), "decode.nbest: received 3, expected at most the beam size (2)"),
        ("settings", dict(length_penalty=-1.0), "decode.length_penalty: received -1.0, expected a number >= 0"),
        (
            "settings",
            dict(length_penalty=float("nan")),
            "decode.length_penalty: received nan, expected a finite number >= 0",
        ),
        ("batching", dict(batch_size=0), "decode.batch_size: received 0, expected a positive integer"),
        (
            "batching",
            dict(batch_size=4, batch_tokens=100),
            "decode.batch_tokens: received 100, expected no batch_size beside it (give one of the two)",
        ),
        ("batching", dict(max_input_len=0), "decode.max_input_len: received 0, expected a positive integer"),
    ):
        with pytest.raises(UserError) as error:
            getattr(translator, make)(**kwargs)
        assert str(error.value) == message
    with pytest.raises(UserError, match="^chunk_lines: received 0, expected a positive integer$"):
        translator.translate_stream(["one"], chunk_lines=0)
    with pytest.raises(TypeError, match="settings: expected a SearchSettings"):
        translator.translate(["one"], dict(beam_size=2))


def test_decode_defaults_are_merged_once(translator):
    """The run's decode section gives every option not given; the settings are one validated object."""
    from nmt.decode.graph import Batching
    from nmt.decode.search import SearchSettings

    d = translator.decode
    assert translator.settings() == SearchSettings(
        d.beam_size, min(d.nbest, d.beam_size), d.length_penalty, d.max_len_a, d.max_len_b
    )
    assert translator.settings(beam_size=1).nbest == 1 and translator.settings(3, 2, 0.0).length_penalty == 0.0
    assert translator.batching() == Batching(batch_size=d.batch_size, max_input_len=d.max_input_len)
    assert translator.batching(batch_tokens=50) == Batching(batch_tokens=50, max_input_len=d.max_input_len)
    assert translator.translate(["one"])[0].text == translator.translate(["one"], translator.settings())[0].text


def test_attention_weights_are_distributions(translator, run):
    sentence = run["test"][0][0]
    (translation,) = translator.translate([sentence], translator.settings(beam_size=2, attention=True))
    best = translation.hypotheses[0]
    assert best.attention.shape == (len(best.tokens) + 1, len(translation.source_ids))  # tokens + EOS
    np.testing.assert_allclose(best.attention.sum(axis=1), 1.0, atol=1e-5)
    assert translation.source_ids == translator.tokenizers.src.encode(sentence)


def test_cho2014_has_no_attention(tmp_path):
    from nmt.decode.translator import load_run
    from nmt.errors import UserError

    cho = load_run(make_run(tmp_path / "cho", architecture="cho2014", epochs=0)["dir"])
    assert [t.text for t in cho.translate(["one", ""], cho.settings(beam_size=2))][1] == ""
    with pytest.raises(UserError, match="cho2014.*no attention"):
        cho.translate(["one"], cho.settings(attention=True))


def test_plot_attention_writes_png(tmp_path):
    import matplotlib.image

    from nmt.train.plotting import plot_attention

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
    from nmt.decode.translator import EXPORT_DIR, export_translator

    path = tmp_path / "run" / EXPORT_DIR  # in a copy: the shared run is read by other tests meanwhile
    shutil.copytree(run["dir"], path.parent)
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

    expected = [t.text for t in translator.translate(sentences)]
    assert result["translations"] == expected
    assert [result["translations"][i] for i, s in enumerate(sentences) if not s.strip()] == ["", "", ""]
    expected_nbest = [
        t.hypotheses for t in translator.translate(sentences, translator.settings(nbest=translator.decode.beam_size))
    ]
    assert result["nbest"] == [[h.text for h in hyps] for hyps in expected_nbest]
    np.testing.assert_allclose(
        result["scores"], [[h.score for h in hyps] for hyps in expected_nbest], rtol=1e-4, atol=1e-4
    )
    assert all(math.isfinite(s) for row in result["scores"] for s in row)


def test_in_process_graph_equals_the_reloaded_saved_model(translator, run, tmp_path):
    """One graph: the SavedModel reloaded (in this process) gives the in-process translator's texts and
    scores exactly, on a batch with empty, over-long (cut to max_input_len) and duplicate sentences."""
    import dataclasses

    import tensorflow as tf

    from nmt.decode.translator import Translator, export_translator

    decode = dataclasses.replace(translator.decode, beam_size=3, max_input_len=12, batch_size=4)
    small = Translator(translator.model, translator.tokenizers, decode)
    plain = [s for s, _ in run["test"][:9]]
    long_line = " ".join(["twenty-one"] * 10)  # over 12 tokens: cut
    sentences = [plain[0], "", long_line, plain[1], plain[0], "  ", long_line + " two", *plain[2:], plain[1], ""]
    detailed = small.translate(sentences, small.settings(nbest=3))
    counts = [len(small.tokenizers.src.encode(s)) for s in sentences]
    assert [t.truncated_from for t in detailed] == [n if n > 12 else None for n in counts]
    assert detailed[2].truncated_from > 12 and len(detailed[2].source_ids) == 12

    loaded = tf.saved_model.load(str(export_translator(small, tmp_path / "export")))
    serve = loaded.signatures["serving_default"](sentences=tf.constant(sentences))
    nbest = loaded.signatures["nbest"](sentences=tf.constant(sentences))
    assert [t.decode("utf-8") for t in serve["translations"].numpy()] == [t.text for t in small.translate(sentences)]
    assert [[t.decode("utf-8") for t in row] for row in nbest["translations"].numpy()] == [
        [h.text for h in t.hypotheses] for t in detailed
    ]
    assert nbest["scores"].numpy().tolist() == [[h.score for h in t.hypotheses] for t in detailed]
    assert [h.score for t in detailed if not t.source.strip() for h in t.hypotheses] == [0.0] * 9

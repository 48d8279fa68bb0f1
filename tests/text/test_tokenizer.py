"""SentencePiece tokenizers: training, reserved ids, graph ops vs the Python package, round trips."""

from __future__ import annotations

import dataclasses
import shutil
import unicodedata

import numpy as np
import pytest
import sentencepiece as spm
import tensorflow as tf

from nmt.errors import UserError
from nmt.text import subword
from nmt.text.tokenizer import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    UNK_ID,
    Tokenizer,
    TokenizerConfig,
    Tokenizers,
    sample_lines,
    train_tokenizers,
)

LANGS = ("en", "de", "fr", "cs")


def val_lines(multi30k_dir, lang) -> list[str]:
    with open(multi30k_dir / f"val.{lang}", encoding="utf-8", newline="") as f:
        return [line.rstrip("\n") for line in f]


def normalized(s: str) -> str:
    """The expected round trip, computed without SentencePiece: NFKC, whitespace runs collapsed."""
    return " ".join(unicodedata.normalize("NFKC", s).split())


def test_a_model_with_other_reserved_ids_is_refused(tmp_path):
    """The ids pad 0, unk 1, bos 2, eos 3 are a contract with the model and the search: a SentencePiece
    model trained with SentencePiece's own defaults (unk 0, bos 1, eos 2, no pad) is refused by name."""
    import io

    sentences = [f"sentence number {i} with some words" for i in range(200)]
    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(sentences), model_writer=buffer, vocab_size=40)
    path = tmp_path / "foreign.model"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(UserError, match=r"foreign.model.*expected '<pad>'"):
        Tokenizer.from_file(path)
    assert (PAD_ID, UNK_ID, BOS_ID, EOS_ID) == (0, 1, 2, 3)  # the documented contract


def test_reserved_pieces_in_trained_model(multi30k_tokenizer_dir, multi30k_tokenizers):
    sp = spm.SentencePieceProcessor(model_file=str(multi30k_tokenizer_dir / "joint.model"))
    assert (sp.pad_id(), sp.unk_id(), sp.bos_id(), sp.eos_id()) == (0, 1, 2, 3)
    assert [sp.id_to_piece(i) for i in range(4)] == ["<pad>", "<unk>", "<s>", "</s>"]
    assert sp.get_piece_size() == 2000 == multi30k_tokenizers.src.vocab_size
    assert multi30k_tokenizers.joint and multi30k_tokenizers.src is multi30k_tokenizers.tgt


@pytest.mark.parametrize("lang", LANGS)
def test_graph_round_trip_over_multi30k_val(multi30k_dir, multi30k_tokenizers, lang):
    lines = val_lines(multi30k_dir, lang)
    assert len(lines) == 1014
    tok = multi30k_tokenizers.src
    ids = tok.tf_tokenize(tf.constant(lines))
    assert isinstance(ids, tf.RaggedTensor) and ids.dtype == tf.int32
    assert int(tf.reduce_sum(tf.cast(ids.flat_values == UNK_ID, tf.int32))) == 0
    back = [x.decode("utf-8") for x in tok.tf_detokenize(ids).numpy()]
    expected = [normalized(s) for s in lines]
    mismatches = [(e, b) for e, b in zip(expected, back) if e != b]
    assert not mismatches, mismatches[:3]
    # The padded dense form (as a model emits it, with EOS then padding) decodes the same.
    dense = tf.concat([ids, tf.fill([ids.nrows(), 1], EOS_ID)], axis=1).to_tensor(default_value=PAD_ID)
    assert [x.decode("utf-8") for x in tok.tf_detokenize(dense).numpy()] == expected
    # And the Python side agrees.
    assert [tok.decode(tok.encode(s)) for s in lines[:100]] == expected[:100]


@pytest.mark.parametrize("lang", LANGS)
def test_tensorflow_text_and_sentencepiece_give_identical_ids(
    multi30k_dir, multi30k_tokenizer_dir, multi30k_tokenizers, lang
):
    lines = val_lines(multi30k_dir, lang)
    sp = spm.SentencePieceProcessor(model_file=str(multi30k_tokenizer_dir / "joint.model"))
    tf_ids = multi30k_tokenizers.src.tf_tokenize(tf.constant(lines)).to_list()
    assert tf_ids == sp.encode(lines)


def test_model_reloaded_from_disk_gives_identical_ids(
    multi30k_dir, multi30k_tokenizer_dir, multi30k_tokenizers, tmp_path
):
    lines = val_lines(multi30k_dir, "de")[:300] + val_lines(multi30k_dir, "cs")[:300]
    before = multi30k_tokenizers.src.tf_tokenize(tf.constant(lines)).to_list()
    copy = tmp_path / "copy"
    shutil.copytree(multi30k_tokenizer_dir, copy)
    reloaded = Tokenizers.load(copy)
    assert reloaded.src.model_proto == multi30k_tokenizers.src.model_proto
    assert reloaded.src.tf_tokenize(tf.constant(lines)).to_list() == before
    assert [reloaded.src.encode(s) for s in lines] == before
    assert reloaded.config == multi30k_tokenizers.config


def test_detokenize_stops_at_eos_and_pad_and_skips_bos(multi30k_tokenizers):
    tok = multi30k_tokenizers.src
    a, b = tok.encode("Ein Hund läuft."), tok.encode("Zwei Katzen")
    width = max(len(a), len(b)) + 4
    rows = [
        [BOS_ID] + a + [EOS_ID] + b[: width - len(a) - 2],  # garbage after EOS is ignored
        b + [PAD_ID] * (width - len(b)),
        [EOS_ID] + a + [0] * (width - len(a) - 1),  # empty output
    ]
    out = tok.tf_detokenize(tf.constant(rows, tf.int32)).numpy().tolist()
    assert out == [b"Ein Hund l\xc3\xa4uft.", b"Zwei Katzen", b""]
    ragged = tf.ragged.constant([[BOS_ID] + a, b + [EOS_ID, 7, 8]], dtype=tf.int32)
    assert tok.tf_detokenize(ragged).numpy().tolist() == [b"Ein Hund l\xc3\xa4uft.", b"Zwei Katzen"]
    assert tok.decode([BOS_ID] + b + [EOS_ID] + a) == "Zwei Katzen"
    assert tok.decode(np.array(b + [PAD_ID, PAD_ID])) == "Zwei Katzen"


def test_encode_has_no_bos_or_eos(multi30k_tokenizers):
    ids = multi30k_tokenizers.src.encode("A man rides a bike.")
    assert ids and not set(ids) & {PAD_ID, BOS_ID, EOS_ID}


def test_unseen_characters_survive_through_byte_fallback(multi30k_tokenizers):
    tok = multi30k_tokenizers.src
    text = "Ωμέγα ☃ 東京"
    ids = tok.encode(text)
    assert UNK_ID not in ids
    assert tok.tf_detokenize(tok.tf_tokenize([text])).numpy()[0].decode("utf-8") == text


# --------------------------------------------------------------------------------------------
# Training options and errors

SMALL_EN = [f"the {w} number {i} is here" for i, w in enumerate(["red", "blue", "green", "big", "small"] * 40)]
SMALL_DE = [f"die {w} Zahl {i} ist hier" for i, w in enumerate(["rote", "blaue", "grüne", "große", "kleine"] * 40)]


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_vocab_too_large_is_one_line_with_the_value_to_use(tmp_path, model_type):
    cfg = TokenizerConfig(model_type=model_type, vocab_size=5000, byte_fallback=False)
    with pytest.raises(UserError) as e:
        train_tokenizers(cfg, SMALL_EN, SMALL_DE, tmp_path / "a")
    msg = str(e.value)
    assert "\n" not in msg and "tokenizer.vocab_size=5000 is larger than" in msg
    suggested = int(msg.split("set tokenizer.vocab_size to ")[1].split()[0])
    assert 4 < suggested < 5000
    # The suggested value works.
    paths = train_tokenizers(dataclasses.replace(cfg, vocab_size=suggested), SMALL_EN, SMALL_DE, tmp_path / "b")
    assert Tokenizers.load(tmp_path / "b").src.vocab_size == suggested
    assert paths["src"] == paths["tgt"] == tmp_path / "b" / "joint.model"


def test_vocab_too_small_says_the_minimum(tmp_path):
    cfg = TokenizerConfig(vocab_size=20, byte_fallback=False)
    with pytest.raises(UserError) as e:
        train_tokenizers(cfg, SMALL_EN, SMALL_DE, tmp_path / "a")
    msg = str(e.value)
    assert "\n" not in msg and "too small" in msg
    minimum = int(msg.split("at least ")[1].split()[0])
    # 4 reserved ids + the distinct characters of the text (space excepted; it becomes the ▁ piece).
    chars = set("".join(SMALL_EN + SMALL_DE)) - {" "}
    assert minimum == 4 + len(chars) + 1
    train_tokenizers(dataclasses.replace(cfg, vocab_size=minimum), SMALL_EN, SMALL_DE, tmp_path / "b")


def test_separate_models(tmp_path):
    cfg = TokenizerConfig(vocab_size=60, joint=False, byte_fallback=False, model_type="bpe")
    paths = train_tokenizers(cfg, SMALL_EN, SMALL_DE, tmp_path)
    assert paths["src"].name == "src.model" and paths["tgt"].name == "tgt.model"
    tk = Tokenizers.load(tmp_path)
    assert not tk.joint and tk.src.vocab_size == tk.tgt.vocab_size == 60
    # Each model knows only its own language's characters: "ü" (German only) is unknown to src.
    assert UNK_ID in tk.src.encode("grüne") and UNK_ID not in tk.tgt.encode("grüne")
    assert tk.tgt.decode(tk.tgt.encode("die grüne Zahl")) == "die grüne Zahl"


def test_subword_models_without_tensorflow_give_the_graph_tokenizers_ids(multi30k_dir, tmp_path):
    """nmt.text.subword (what train.py filters the corpus with before loading TensorFlow) trains in memory
    the bytes train_tokenizers writes, and encodes every line as the in-graph tokenizer does, for a
    joint model and for separate ones."""
    en, de = val_lines(multi30k_dir, "en")[:400], val_lines(multi30k_dir, "de")[:400]
    for joint in (True, False):
        cfg = TokenizerConfig(vocab_size=500, joint=joint)
        out = tmp_path / f"joint_{joint}"
        train_tokenizers(cfg, en, de, out)
        trained = subword.train_models(cfg, en, de)
        assert {name: (out / name).read_bytes() for name in trained.models} == trained.models
        graph = Tokenizers.load(out)
        for pair in (trained.pair(), subword.SubwordPair.load(out)):
            assert (pair.src is pair.tgt) == joint == graph.joint
            for side, lines in (("src", en), ("tgt", de)):
                expected = getattr(graph, side).tf_tokenize(tf.constant(lines)).to_list()
                assert getattr(pair, side).encode_batch(lines) == expected
                assert getattr(pair, side).vocab_size == getattr(graph, side).vocab_size


def test_subword_pair_load_errors_name_the_file(tmp_path):
    with pytest.raises(UserError, match="tokenizer.json not found"):
        subword.SubwordPair.load(tmp_path)
    train_tokenizers(TokenizerConfig(vocab_size=60, byte_fallback=False), SMALL_EN, SMALL_DE, tmp_path)
    (tmp_path / "joint.model").write_bytes(b"not a model")
    with pytest.raises(UserError, match=r"joint\.model: not a valid SentencePiece model"):
        subword.SubwordPair.load(tmp_path)


def test_training_from_files_and_sample_size(tmp_path):
    (tmp_path / "a.en").write_text("\n".join(SMALL_EN) + "\n\n   \n", encoding="utf-8")
    (tmp_path / "a.de").write_text("\n".join(SMALL_DE) + "\n", encoding="utf-8")
    cfg = TokenizerConfig(vocab_size=60, byte_fallback=False, input_sentence_size=50, seed=3)
    paths = train_tokenizers(cfg, tmp_path / "a.en", str(tmp_path / "a.de"), tmp_path / "tok")
    import json

    meta = json.loads(paths["meta"].read_text())
    assert meta["sampled_sentences"] == {"src": 50, "tgt": 50}
    assert meta["special_ids"] == {"pad": 0, "unk": 1, "bos": 2, "eos": 3}
    assert TokenizerConfig(**meta["config"]) == cfg


def test_sample_lines_is_seeded_uniform_and_skips_blank_lines():
    lines = [f"s{i}" for i in range(1000)] + ["", "  "]
    a = sample_lines(iter(lines), 100, seed=1)
    assert a == sample_lines(iter(lines), 100, seed=1)
    assert a != sample_lines(iter(lines), 100, seed=2)
    assert len(a) == 100 and len(set(a)) == 100 and set(a) <= set(lines[:1000])
    assert a == sorted(a, key=lambda s: int(s[1:]))  # input order kept
    assert sample_lines(iter(lines), 5000, seed=1) == lines[:1000]
    # Roughly uniform: both halves of the input are represented.
    first_half = sum(int(s[1:]) < 500 for s in a)
    assert 30 < first_half < 70


def test_one_pass_over_pairs_samples_each_side_as_two_passes_would(numbers_corpus):
    """`train_models(cfg, pairs)` (what training does: one read of the corpus) against the two samples and
    the models of `train_models(cfg, sources, targets)`: the same lines and byte-identical models."""
    from nmt.text.subword import sample_pairs, train_models

    pairs = [(s, t) for s, t in numbers_corpus["train"][:800]] + [("", "leer"), ("blank target", " ")]
    src, tgt = [s for s, _ in pairs], [t for _, t in pairs]
    assert sample_pairs(iter(pairs), 300, seed=4) == (sample_lines(src, 300, seed=4), sample_lines(tgt, 300, seed=5))
    cfg = TokenizerConfig(vocab_size=400, input_sentence_size=300, seed=4)
    assert train_models(cfg, iter(pairs)).models == train_models(cfg, src, tgt).models


def test_empty_training_text(tmp_path):
    with pytest.raises(UserError, match="no non-empty lines"):
        train_tokenizers(TokenizerConfig(vocab_size=50), ["", " "], ["x"], tmp_path)


def test_load_errors(tmp_path):
    with pytest.raises(UserError, match="tokenizer.json not found"):
        Tokenizers.load(tmp_path)
    # A model trained with SentencePiece's default ids (unk=0, bos=1, eos=2) is refused.
    import io

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(SMALL_EN), model_writer=buf, vocab_size=40, minloglevel=2)
    with pytest.raises(UserError, match="id 0 is '<unk>', expected '<pad>'"):
        Tokenizer(buf.getvalue())


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"model_type": "word"}, "tokenizer.model_type"),
        ({"vocab_size": 0}, "tokenizer.vocab_size"),
        ({"vocab_size": 8000.0}, "tokenizer.vocab_size"),
        ({"joint": "no"}, "tokenizer.joint"),
        ({"character_coverage": 1.5}, "tokenizer.character_coverage"),
        ({"input_sentence_size": 0}, "tokenizer.input_sentence_size"),
        ({"byte_fallback": 1}, "tokenizer.byte_fallback"),
    ],
)
def test_config_errors_name_the_field(kwargs, field):
    with pytest.raises(UserError) as e:
        TokenizerConfig(**kwargs)
    assert str(e.value).startswith(field)


def test_config_values_reach_the_trained_models(tmp_path, numbers_corpus):
    """A tokenizer: section as a config file gives it (through nmt.config) decides what SentencePiece
    trains: separate BPE models of the asked size, read back from the model files themselves."""
    from sentencepiece import sentencepiece_model_pb2

    from nmt import config

    d = {"model_type": "bpe", "vocab_size": 300, "joint": False, "byte_fallback": False, "seed": 2}
    cfg = config.from_dict({"tokenizer": d}).tokenizer
    train = numbers_corpus["train"]
    paths = train_tokenizers(cfg, [s for s, _ in train], [t for _, t in train], tmp_path)
    assert paths["src"] != paths["tgt"]
    for side in ("src", "tgt"):
        proto = sentencepiece_model_pb2.ModelProto()
        proto.ParseFromString(paths[side].read_bytes())
        assert proto.trainer_spec.model_type == sentencepiece_model_pb2.TrainerSpec.BPE
        assert proto.trainer_spec.vocab_size == 300 == len(proto.pieces)
        assert not proto.trainer_spec.byte_fallback
    loaded = Tokenizers.load(tmp_path)
    assert not loaded.joint and loaded.config == cfg


def test_exported_module_tokenizes_raw_strings(multi30k_tokenizers, tmp_path):
    """A saved tf.Module holding the tokenizer carries the model: it takes and returns raw strings."""
    tok = multi30k_tokenizers.src

    class Export(tf.Module):
        def __init__(self):
            super().__init__()
            self.tok = tok

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def round_trip(self, texts):
            ids = self.tok.tf_tokenize(texts)
            return {"ids": ids.to_tensor(), "text": self.tok.tf_detokenize(ids)}

    tf.saved_model.save(Export(), str(tmp_path / "m"))
    loaded = tf.saved_model.load(str(tmp_path / "m"))
    texts = ["Ein   Mann fährt Fahrrad.", "Un chien court."]
    out = loaded.round_trip(tf.constant(texts))
    assert [x.decode("utf-8") for x in out["text"].numpy()] == [normalized(t) for t in texts]
    assert out["ids"].numpy()[1][: len(tok.encode(texts[1]))].tolist() == tok.encode(texts[1])


def test_graph_tokenizer_survives_a_random_seed_reset(tmp_path):
    """tf.random.set_seed clears TensorFlow's kernel cache, which used to delete tensorflow-text's
    kernel-owned SentencePiece resource under every existing tokenizer."""
    import keras

    lines = [f"sentence number {i} with some words" for i in range(300)]
    train_tokenizers(TokenizerConfig(vocab_size=60, byte_fallback=False), lines, lines, tmp_path)
    tok = Tokenizers.load(tmp_path).src
    before = tok.tf_tokenize(["sentence number 7"]).to_list()
    keras.utils.set_random_seed(3)
    assert tok.tf_tokenize(["sentence number 7"]).to_list() == before == [tok.encode("sentence number 7")]
    assert tok.tf_detokenize(tf.constant(before)).numpy().tolist() == [b"sentence number 7"]


def test_the_reservoir_keeps_every_line_with_equal_chance():
    """Over 4,000 seeds, each of 12 lines is in a 3-line sample about 1,000 times (binomial, sd 27), and two
    given lines together about 182 times (sd 13), for pairs at the start, the end and both ends."""
    from collections import Counter

    lines = [f"line {i}" for i in range(12)]
    counts, pairs = Counter(), Counter()
    for seed in range(4000):
        sample = set(sample_lines(lines, 3, seed))
        assert len(sample) == 3
        counts.update(sample)
        pairs.update((a, b) for a, b in ((0, 1), (10, 11), (0, 11)) if lines[a] in sample and lines[b] in sample)
    assert all(abs(counts[line] - 1000) < 4 * 27 for line in lines), counts
    assert all(abs(pairs[pair] - 4000 * 3 / 12 * 2 / 11) < 4 * 13 for pair in ((0, 1), (10, 11), (0, 11))), pairs

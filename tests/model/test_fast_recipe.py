"""The built-in toy config is the fast recipe of configs/multi30k.yaml (attention after the decoder
GRU, its scores, residual + LayerNorm, summed encoder directions, zero initial state, no deep output,
its dropout) at a small size, so the README's main job and its end-to-end test
(tests/train/test_toy_config.py::test_toy_config_reaches_dev_bleu_90, which trains it to the toy BLEU bar and
compares the in-process translator with the exported SavedModel) follow the recommended configuration.

The papers' models keep their own configs (configs/multi30k_attention.yaml, configs/multi30k_cho2014.yaml);
in CI they are checked against float64 NumPy forward computations (tests/model/test_model_equations.py) and
trained until they memorise a small batch (tests/model/test_seq2seq.py). CI trains no Multi30k model.
"""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
# the model keys that set a size (the toy model is small); every other model key is the recipe's
SIZES = {"embedding_dim", "encoder_units", "decoder_units", "attention_units", "output_dim", "encoder_layers"}


def model_section(name: str) -> dict:
    return yaml.safe_load((ROOT / "configs" / name).read_text(encoding="utf-8"))["model"]


def test_the_toy_config_uses_the_recipe_of_multi30k_yaml():
    recipe, toy = model_section("multi30k.yaml"), model_section("toy.yaml")
    assert set(toy) == set(recipe)
    differing = {k: (toy[k], recipe[k]) for k in recipe if k not in SIZES and toy[k] != recipe[k]}
    assert differing == {}, differing


def test_the_recipe_is_the_luong_decoder_not_a_papers_model():
    recipe = model_section("multi30k.yaml")
    assert recipe["architecture"] == "attention" and recipe["attention_position"] == "luong"
    assert model_section("multi30k_attention.yaml")["attention_position"] == "bahdanau"
    assert model_section("multi30k_cho2014.yaml")["architecture"] == "cho2014"

"""The length penalty chosen on dev (nmt.decode.tuning): the sweep against sacrebleu's own corpus BLEU, the
file it writes, and how a run's decode defaults take it."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
import sacrebleu

from nmt.config import DecodeConfig
from nmt.decode import tuning
from nmt.decode.settings import SearchSettings
from nmt.errors import UserError
from nmt.rundir import TUNED_DECODE_FILE

REFERENCES = [
    "a man in a blue shirt is standing on a ladder",
    "two dogs are running through the snow",
    "a girl is eating an ice cream cone",
    "people are walking down a busy street at night",
]


class CuttingTranslator:
    """Stands in for a Translator: the length penalty decides how many words of each reference it keeps, so
    a larger one gives longer output up to a point (and garbage after it), as a length penalty does."""

    def __init__(self):
        self.calls = []

    def settings(self, length_penalty):
        return SearchSettings(length_penalty=length_penalty)

    def translate(self, sources, settings):
        self.calls.append(settings.length_penalty)
        return [SimpleNamespace(text=text) for text in self.texts(sources, settings.length_penalty)]

    @staticmethod
    def texts(sources, length_penalty):
        keep = {0.0: 3, 0.5: 5, 1.0: 100, 2.0: 100, 3.0: 100}[length_penalty]
        extra = " x y z" if length_penalty == 3.0 else ""
        return [" ".join(r.split()[:keep]) + extra for r in sources]


def test_the_sweep_keeps_the_best_dev_bleu_and_the_first_listed_on_a_tie():
    pairs = [(r, r) for r in REFERENCES]
    translator = CuttingTranslator()
    best, scores = tuning.sweep(translator, pairs, (0.0, 0.5, 2.0, 1.0, 3.0), log=lambda _: None)
    assert translator.calls == [0.0, 0.5, 2.0, 1.0, 3.0]
    for alpha, score in scores.items():  # each score is sacrebleu's corpus BLEU of that α's output
        expected = sacrebleu.corpus_bleu(translator.texts(REFERENCES, alpha), [REFERENCES]).score
        assert score.bleu == pytest.approx(expected)
    assert scores[2.0].bleu == scores[1.0].bleu == pytest.approx(100.0)
    assert best == 2.0  # tied with 1.0, listed first
    assert max(s.bleu for a, s in scores.items() if a != 2.0) <= scores[2.0].bleu


def test_the_written_choice_becomes_the_decode_default(tmp_path):
    pairs = [(r, r) for r in REFERENCES]
    best, scores = tuning.sweep(CuttingTranslator(), pairs, (0.0, 1.0), log=lambda _: None)
    decode = DecodeConfig(length_penalty=0.6, beam_size=4)
    assert tuning.apply(tmp_path, decode) == decode  # no file: the config's α
    path = tuning.write(tmp_path, best, scores)
    assert path == tmp_path / TUNED_DECODE_FILE
    assert tuning.apply(tmp_path, decode) == dataclasses.replace(decode, length_penalty=1.0)


@pytest.mark.parametrize(
    "text, detail",
    [
        ("length_penalty: -1\n", "decode.length_penalty: received -1.0, expected a number >= 0"),
        ("length_penalty: .nan\n", "decode.length_penalty: received nan, expected a finite number >= 0"),
        ("dev_bleu: {}\n", "decode.length_penalty: received None, expected a number >= 0"),
        ("[1, 2\n", "cannot read the tuned decode settings (ParserError)"),
    ],
)
def test_a_damaged_tuned_file_is_named(tmp_path, text, detail):
    (tmp_path / TUNED_DECODE_FILE).write_text(text, encoding="utf-8")
    with pytest.raises(UserError) as error:
        tuning.apply(tmp_path, DecodeConfig())
    assert str(error.value) == f"{tmp_path / TUNED_DECODE_FILE}: {detail}"


@pytest.mark.parametrize("values", [[], [0.6, 0.6], [-0.5, 1.0]])
def test_tune_length_penalty_is_checked(values):
    with pytest.raises(UserError, match=r"^decode\.tune_length_penalty: received .*, expected a non-empty list"):
        DecodeConfig(tune_length_penalty=values)

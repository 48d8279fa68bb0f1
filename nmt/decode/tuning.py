"""The length penalty chosen on dev after training (``decode.tune_length_penalty``).

A model stopped early in its learning writes short output and needs a larger GNMT length penalty than the
same model trained longer (docs/RESULTS.md has the sweeps that showed it). With
``decode.tune_length_penalty: [α1, α2, ...]`` the run decodes its dev set (the sentences dev BLEU uses:
``train.eval_max_sentences``) with each value (beam ``decode.beam_size``) once training ends, keeps the one
of the best dev BLEU (the first listed on a tie) and writes it, with the sweep, to RUN_DIR/decode_tuned.yaml:

    length_penalty: 1.6                                   # the chosen value
    dev_bleu: {0.8: B1, 1.2: B2, 1.6: B3, 2.0: B4}        # the dev BLEU of every value tried

That value is the search default of the test score, the export, `load_run` and translate.py (`apply`,
the one place where it meets the run's ``decode:`` section); config.yaml stays the config the run was started
with (so that --resume still matches it). TensorFlow-free: the sweep takes the translator.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from nmt.errors import UserError
from nmt.files import atomic_write_text
from nmt.rundir import TUNED_DECODE_FILE

if TYPE_CHECKING:
    from nmt.text import evaluation


def sweep(
    translator, pairs: Sequence[tuple[str, str]], penalties: Sequence[float], log: Callable[[str], None] = print
) -> tuple[float, dict[float, evaluation.Scores]]:
    """Decodes the sources of pairs with each length penalty (the translator's other settings) and scores
    them against the targets. -> (the value with the highest BLEU, the first listed on a tie; {value: Scores})."""
    from nmt.text import evaluation

    sources, references = [s for s, _ in pairs], [t for _, t in pairs]
    scores = {}
    for value in penalties:
        hypotheses = [t.text for t in translator.translate(sources, translator.settings(length_penalty=value))]
        scores[value] = evaluation.score(hypotheses, references)
        log(f"length penalty {value:g}: dev {scores[value].format()}")
    penalties = list(penalties)
    best = max(penalties, key=lambda a: (scores[a].bleu, -penalties.index(a)))
    return best, scores


def write(run_dir, length_penalty: float, scores: dict[float, evaluation.Scores]) -> Path:
    """Writes RUN_DIR/decode_tuned.yaml (atomically) -> its path."""
    path = Path(run_dir) / TUNED_DECODE_FILE
    values = {
        "length_penalty": float(length_penalty),
        "dev_bleu": {float(a): round(s.bleu, 2) for a, s in scores.items()},
    }
    atomic_write_text(path, yaml.safe_dump(values, sort_keys=False), what="the tuned decode settings")
    return path


def apply(run_dir, decode):
    """The decode section with RUN_DIR/decode_tuned.yaml's length penalty, where that file exists."""
    path = Path(run_dir) / TUNED_DECODE_FILE
    if not path.exists():
        return decode
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise UserError(f"{path}: cannot read the tuned decode settings ({type(error).__name__})") from None
    value = values.get("length_penalty") if isinstance(values, dict) else None
    try:
        return dataclasses.replace(decode, length_penalty=value)  # validated by the section's declaration
    except UserError as error:
        raise UserError(f"{path}: {error}") from None

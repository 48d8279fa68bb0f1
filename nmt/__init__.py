"""nmt: GRU encoder-decoder machine translation on Keras 3 / TensorFlow.

The Python API (each name is imported on first use, so ``import nmt`` loads no TensorFlow)::

    import nmt

    cfg = nmt.load_config("configs/toy.yaml", ["train.epochs=3"])   # typed, validated config
    result = nmt.train(nmt.prepare(cfg, "runs/toy"))                 # the run directory, then Keras fit
    translator = nmt.load_run("runs/toy")                            # model.keras, tokenizer/, decode defaults
    [t.text for t in translator.translate(["three hundred and two"])]
    translator.translate(lines, translator.settings(beam_size=5, nbest=3))   # nmt.SearchSettings
    nmt.score(hypotheses, references).format()                       # BLEU and chrF, sacreBLEU signatures
    model = nmt.load_model("runs/toy")                               # the keras.Model of model.keras

docs/ARCHITECTURE.md maps the package: nmt.text (reading, corpora, SentencePiece, scoring), nmt.model
(the networks), nmt.train, nmt.decode, nmt.serve (translations over HTTP), nmt.cli.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: public name -> (module, attribute)
_API = {
    "load_config": ("nmt.config", "load"),
    "Config": ("nmt.config", "Config"),
    "prepare": ("nmt.train.prepare", "prepare"),
    "train": ("nmt.train.trainer", "train"),
    "load_run": ("nmt.decode.translator", "load_run"),
    "load_model": ("nmt.decode.translator", "load_model"),
    "Translator": ("nmt.decode.translator", "Translator"),
    "SearchSettings": ("nmt.decode.settings", "SearchSettings"),
    "Batching": ("nmt.decode.settings", "Batching"),
    "score": ("nmt.text.evaluation", "score"),
    "UserError": ("nmt.errors", "UserError"),
}

__all__ = sorted(_API)


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'nmt' has no attribute {name!r}")
    module, attribute = _API[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_API))

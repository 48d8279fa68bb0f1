"""The command line: one command, ``nmt VERB ...`` (installed by pyproject.toml; ``python -m nmt VERB ...``
from a checkout), with one module per verb. Four verbs keep a script of their own with the same flags,
which runs the same code:

    nmt train      = python train.py                  nmt.cli.train
    nmt translate  = python translate.py              nmt.cli.translate
    nmt evaluate   = python scripts/evaluate.py       nmt.cli.evaluate
    nmt prepare    = python scripts/prepare_data.py   nmt.cli.prepare
    nmt score, nmt report, nmt serve                  nmt.cli.score, nmt.cli.report, nmt.cli.serve

Every verb parses its options with `nmt.errors.ArgumentParser` and reports a user's mistake as one line
``error: ...`` (exit status 2); ``error: <what> (see nmt VERB --help)`` for an option. Each keeps
TensorFlow's start-up messages off standard error unless --verbose.
"""

COMMANDS = {
    "train": ("nmt.cli.train", "train a model from a YAML config"),
    "translate": (
        "nmt.cli.translate",
        "translate sentences, files or standard input with a run directory",
    ),
    "evaluate": (
        "nmt.cli.evaluate",
        "BLEU and chrF with sacreBLEU signatures; paired bootstrap of two systems",
    ),
    "prepare": (
        "nmt.cli.prepare",
        "prepare a corpus: the built-in numbers corpus, Multi30k, or a TSV file",
    ),
    "score": ("nmt.cli.score", "score given translations with a model: log-probability per pair (forced decoding)"),
    "report": (
        "nmt.cli.report",
        "the results table and curves of runs (results.json, train.csv); the summary of docs/RESULTS.md",
    ),
    "serve": (
        "nmt.cli.serve",
        "an HTTP JSON API translating with a run directory (POST /translate, GET /health), on 127.0.0.1",
    ),
}

"""The command-line tools, installed as console commands (pyproject.toml) and kept as scripts:

    nmt-train      = python train.py                  nmt.cli.train
    nmt-translate  = python translate.py              nmt.cli.translate
    nmt-evaluate   = python scripts/evaluate.py       nmt.cli.evaluate
    nmt-prepare    = python scripts/prepare_data.py   nmt.cli.prepare

``python -m nmt COMMAND ...`` (and ``nmt COMMAND ...`` once installed) runs them too, and ``score``
(`nmt.cli.score`), ``report`` (`nmt.cli.report`) and ``serve`` (`nmt.cli.serve`), which have no nmt-*
command of their own (scripts/plot_run.py is ``report --plot``). Each reports a user's mistake as one
line ``error: ...`` (exit status 2) and keeps TensorFlow's start-up messages off standard error unless
--verbose.
"""

COMMANDS = {
    "train": ("nmt.cli.train", "train a model from a YAML config (nmt-train)"),
    "translate": (
        "nmt.cli.translate",
        "translate sentences, files or standard input with a run directory (nmt-translate)",
    ),
    "evaluate": (
        "nmt.cli.evaluate",
        "BLEU and chrF with sacreBLEU signatures; paired bootstrap of two systems (nmt-evaluate)",
    ),
    "prepare": (
        "nmt.cli.prepare",
        "prepare a corpus: the built-in numbers corpus, Multi30k, or a TSV file (nmt-prepare)",
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

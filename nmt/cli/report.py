#!/usr/bin/env python
"""The table and the curves of training runs, and the summary of docs/RESULTS.md: no TensorFlow, no decoding.

    python -m nmt report RUN_DIR [RUN_DIR ...] [--labels NAME ...] [--plot PNG] [--json FILE]
    python -m nmt report --summary [--check]

For every run directory, one row of a Markdown table on standard output, read from the files training
wrote: RUN_DIR/results.json (the final scores, written when training ends), config.yaml (the direction
src→tgt and the model) and logs/train.csv (the best dev BLEU of the epochs). The columns: run, direction,
model, steps, minutes of training, why training stopped, the best epoch's dev BLEU (train.eval_beam_size,
greedy by default), the final dev BLEU, test BLEU and test chrF (decoded with the beam and length penalty
shown), the precision policy and the CPU; and, where a results.json has them, the GPUs, which weights
model.keras holds (`weights`) and the run it was fine-tuned from (`init_from`). Other fields of
results.json are shown by --json only. A run without results.json (still training, killed, or trained
before results.json existed) is a row all the same, with what logs/train.csv holds (steps, minutes, the
best epoch's dev BLEU): its "stopped" cell reads "no results.json", its other cells "—", as do the
scores of a split the run did not have. A directory kept under docs/results/ (config.yaml, train.csv and
results.json side by side, no logs/) reads like a run directory. A path that is none of these, or a
damaged results.json, config.yaml or train.csv, is a one-line error that names the file.

--plot draws the curves of all the runs in one PNG (`nmt.train.plotting.plot_runs`: loss, dev BLEU
against steps and against minutes, learning rate; matplotlib is imported only then); --labels names the
runs in the table and the plot (default: the directory names); --json writes the runs as JSON, each with
every field of its results.json. scripts/plot_run.py is this command with --plot.

--summary writes the table of current figures at the top of docs/RESULTS.md (between its
results-summary markers) from the records kept under docs/results/: one directory per kept run with
its results.json (the schema train.py writes; the runs older than results.json were converted from
scripts/results.py's --json files beside them, with null for what was not measured then), config.yaml
and train.csv, and docs/results/runs.yaml, which says on which CPU and on which day each run ran, with
an optional note. A row is a run of a shipped config (configs/*.yaml) as the file is now: its
config.yaml may differ from the shipped one only in the time budget (train.max_time), the epoch bound
(train.epochs, shown), the progress display (train.verbose), the translation direction
(corpus.src_lang/tgt_lang) and keys that did not exist yet and that the shipped file leaves null or at
their declared default. Of the runs of one config, direction, budget, CPU and precision the latest is
shown. "test BLEU beam 5" and "chrF beam 5" are the record's re-decoded beam-5 figures (its `decoded`
field, written by scripts/results.py) or else its test score when it was decoded with beam 5; "greedy"
is the re-decoded beam-1 BLEU, "—" where the run was not re-decoded. --check changes nothing and exits
with status 1 when the table in docs/RESULTS.md is not the one these files give.

What `nmt report` does not do is decode: measuring greedy and beam BLEU of a test set again, and the
decoding speed, loads the model and TensorFlow, and stays in scripts/results.py (whose --keep writes
such a record into docs/results/).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from nmt import rundir
from nmt.errors import OneLineArgumentParser, UserError

EMPTY = "—"  # a cell without a value
NO_RESULTS = f"no {rundir.RESULTS_FILE}"  # the "stopped" cell of a run without results.json


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(prog="nmt report", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "runs", nargs="*", metavar="RUN_DIR", help="run directories written by train.py (or kept in docs/results/)"
    )
    parser.add_argument(
        "--labels", nargs="+", metavar="NAME", help="one name per run, for the table and the plot (default: dir names)"
    )
    parser.add_argument("--plot", metavar="PNG", help="draw the curves of all the runs into this PNG")
    parser.add_argument("--json", metavar="FILE", help="write the runs as JSON, with every field of their results.json")
    parser.add_argument(
        "--summary", action="store_true", help="write the summary table of docs/RESULTS.md from docs/results/"
    )
    parser.add_argument(
        "--check", action="store_true", help="with --summary: change nothing; exit 1 if the table is out of date"
    )
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.summary:
        options = {"RUN_DIR": args.runs, "--labels": args.labels, "--plot": args.plot, "--json": args.json}
        given = [name for name, value in options.items() if value]
        if given:
            parser.error(f"--summary takes no {', '.join(given)}: it reads docs/results/")
    elif args.check:
        parser.error("--check goes with --summary")
    elif not args.runs:
        parser.error("expected one or more RUN_DIR (or --summary)")
    elif args.labels is not None and len(args.labels) != len(args.runs):
        parser.error(f"--labels: {len(args.labels)} labels for {len(args.runs)} runs; give one per RUN_DIR")
    return args


# ------------------------------------------------------------------------------------------ reading a run


@dataclass
class Run:
    """What the files of one run directory say: its config (a mapping, None without config.yaml), its
    results.json (None without one) and its per-epoch log's last step, last minutes and best dev BLEU."""

    path: Path
    config: dict | None
    results: dict | None
    steps: int | None
    minutes: float | None
    best_dev_bleu: float | None


def log_file(run_dir: Path, name: str) -> Path:
    """RUN_DIR/logs/NAME, or RUN_DIR/NAME where only that exists (a run kept in docs/results/)."""
    nested = run_dir / rundir.LOGS_DIR / name
    return run_dir / name if not nested.is_file() and (run_dir / name).is_file() else nested


def read_run(path) -> Run:
    """The run directory at path, its files read and checked (one-line UserErrors naming the file)."""
    run_dir = Path(path)
    if not run_dir.exists():
        raise UserError(f"{run_dir}: no such run directory")
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: not a directory (expected a run directory written by train.py)")
    config_path, results_path = run_dir / rundir.CONFIG_FILE, run_dir / rundir.RESULTS_FILE
    epochs_path, steps_path = log_file(run_dir, rundir.EPOCHS_LOG), log_file(run_dir, rundir.STEPS_LOG)
    if not any(p.exists() for p in (config_path, results_path, epochs_path, steps_path)):
        raise UserError(
            f"{run_dir}: not a run directory (no {rundir.CONFIG_FILE}, {rundir.RESULTS_FILE} or "
            f"{rundir.LOGS_DIR}/{rundir.EPOCHS_LOG} written by train.py)"
        )
    steps, minutes, best = read_epochs(epochs_path)
    return Run(run_dir, read_config(config_path), read_results(results_path), steps, minutes, best)


def _reading_error(path: Path, error: Exception, expected: str) -> UserError:
    if isinstance(error, UnicodeDecodeError):
        return UserError(f"{path}: damaged, not UTF-8 text (byte {error.start}); expected {expected}")
    if isinstance(error, OSError):
        return UserError(f"{path}: cannot read it ({error.strerror or error})")
    return UserError(f"{path}: damaged ({' '.join(str(error).split())}); expected {expected}")


def read_config(path: Path) -> dict | None:
    """config.yaml as a mapping of sections (not checked against today's fields: a run's config may be older
    than a field), or None when there is none."""
    import yaml

    if not path.exists():
        return None
    expected = "the config.yaml train.py writes"
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise _reading_error(path, error, expected) from None
    if not isinstance(values, dict) or not all(isinstance(v, dict) for v in values.values()):
        raise UserError(f"{path}: damaged (not a mapping of sections); expected {expected}")
    return values


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _score(value) -> bool:
    return isinstance(value, dict) and all(value.get(k) is None or _number(value[k]) for k in ("bleu", "chrf"))


#: The fields of results.json that the table reads: (a check of a non-null value, what it should be). A
#: field may be missing or null (a run older than it); fields not listed here are kept as they are.
RESULT_FIELDS = {
    "dev": (_score, "an object with numbers bleu and chrf"),
    "test": (_score, "an object with numbers bleu and chrf"),
    "length_penalty": (_number, "a number"),
    "beam_size": (lambda v: _number(v) and v == int(v), "an integer"),
    "steps": (lambda v: _number(v) and v == int(v), "an integer"),
    "epochs": (_number, "a number"),
    "minutes": (_number, "a number"),
    "stopped": (lambda v: isinstance(v, str), "a string"),
    "device": (
        lambda v: (
            isinstance(v, dict)
            and isinstance(v.get("cpu"), (str, type(None)))
            and isinstance(v.get("gpus") or [], list)
        ),
        'an object {"cpu": a string, "gpus": a list}',
    ),
    "precision": (lambda v: isinstance(v, str), "a string"),
    "versions": (lambda v: isinstance(v, dict), "an object"),
    "config_sha256": (lambda v: isinstance(v, str), "a string"),
    "init_from": (lambda v: isinstance(v, str), "a string"),
    "decoded": (
        lambda v: isinstance(v, dict) and all(k.isdigit() and _score(s) for k, s in v.items()),
        "an object {beam size: scores}",
    ),
}


def read_results(path: Path) -> dict | None:
    """results.json as a dict, its fields checked (RESULT_FIELDS), or None when there is none."""
    if not path.exists():
        return None
    expected = "the JSON object train.py writes when training ends"
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise _reading_error(path, error, expected) from None
    except json.JSONDecodeError as error:
        where = f"line {error.lineno} column {error.colno}"
        raise UserError(f"{path}: damaged, not JSON ({error.msg} at {where}); expected {expected}") from None
    if not isinstance(values, dict):
        raise UserError(f"{path}: damaged (a JSON {type(values).__name__}, not an object); expected {expected}")
    for key, (valid, what) in RESULT_FIELDS.items():
        if values.get(key) is not None and not valid(values[key]):
            shown = json.dumps(values[key])
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise UserError(f"{path}: damaged ({key!r} is {shown}, expected {what}); expected {expected}")
    return values


def read_epochs(path: Path) -> tuple[int | None, float | None, float | None]:
    """(the last step, the last minutes, the best dev BLEU) of a per-epoch log (logs/train.csv); None for
    what it lacks (no file yet, a column an older run did not log, a line cut short by a kill)."""
    if not path.is_file():
        return None, None, None
    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise _reading_error(path, error, "the per-epoch log train.py writes (CSV)") from None

    def values(column: str) -> list[float]:
        found = []
        for row in rows:
            try:
                value = float(row.get(column) or "nan")
            except (TypeError, ValueError):
                continue
            if math.isfinite(value):
                found.append(value)
        return found

    steps, minutes, bleu = values("step"), values("minutes"), values("val_bleu")
    return (int(steps[-1]) if steps else None, minutes[-1] if minutes else None, max(bleu) if bleu else None)


# -------------------------------------------------------------------------------------------- the table


def _get(tree: dict | None, *keys):
    for key in keys:
        if not isinstance(tree, dict):
            return None
        tree = tree.get(key)
    return tree


def direction(config: dict | None) -> str | None:
    src, tgt = _get(config, "corpus", "src_lang"), _get(config, "corpus", "tgt_lang")
    return f"{src}→{tgt}" if src and tgt else None


def model_name(config: dict | None) -> str | None:
    """The architecture, and for attention where the attention sits (bahdanau or luong)."""
    architecture = _get(config, "model", "architecture")
    position = _get(config, "model", "attention_position")
    if architecture == "attention" and position:
        return f"attention ({position})"
    return architecture


def _text(value) -> str:
    """A cell: "—" for nothing, lists and objects written out, no line breaks or column bars."""
    if value is None or value == "" or value == []:
        return EMPTY
    if isinstance(value, list):
        value = ", ".join(map(str, value))
    elif isinstance(value, dict):
        value = ", ".join(f"{k}: {v}" for k, v in value.items())
    return " ".join(str(value).split()).replace("|", "\\|")


def _fixed(value, digits: int) -> str:
    return EMPTY if value is None else f"{value:.{digits}f}"


def _count(value) -> str:
    return EMPTY if value is None else f"{int(value):,}"


def row(run: Run, label: str) -> dict[str, str]:
    """{column: cell} of one run."""
    results = run.results
    known = results or {}
    gpus = _get(results, "device", "gpus")
    return {
        "run": _text(label),
        "direction": _text(direction(run.config)),
        "model": _text(model_name(run.config)),
        "steps": _count(known.get("steps", run.steps) if results else run.steps),
        "minutes": _fixed(known.get("minutes", run.minutes) if results else run.minutes, 1),
        "stopped": NO_RESULTS if results is None else _text(known.get("stopped")),
        "best epoch dev BLEU": _fixed(run.best_dev_bleu, 2),
        "dev BLEU": _fixed(_get(results, "dev", "bleu"), 2),
        "test BLEU": _fixed(_get(results, "test", "bleu"), 2),
        "test chrF": _fixed(_get(results, "test", "chrf"), 2),
        "beam": _count(known.get("beam_size")),
        "length penalty": EMPTY if known.get("length_penalty") is None else f"{known['length_penalty']:g}",
        "precision": _text(known.get("precision")),
        "CPU": _text(_get(results, "device", "cpu")),
        "GPU": _text(gpus),
        "weights": _text(known.get("weights")),
        "init from": _text(known.get("init_from")),
    }


#: Columns shown only when some run has a value there.
OPTIONAL_COLUMNS = ("GPU", "weights", "init from")


def labels_of(runs: list[Run], labels: list[str] | None) -> list[str]:
    """The given labels, or each directory's name (the path as given where two runs share a name)."""
    if labels is not None:
        return list(labels)
    names = [run.path.name or str(run.path) for run in runs]
    return [name if names.count(name) == 1 else str(run.path) for name, run in zip(names, runs)]


def table(runs: list[Run], labels: list[str]) -> str:
    """The Markdown table of the runs, and a line naming the runs without results.json."""
    rows = [row(run, label) for run, label in zip(runs, labels)]
    columns = [c for c in rows[0] if c not in OPTIONAL_COLUMNS or any(r[c] != EMPTY for r in rows)]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(r[c] for c in columns) + " |" for r in rows]
    unfinished = [label for run, label in zip(runs, labels) if run.results is None]
    if unfinished:
        lines += [
            "",
            f"{', '.join(unfinished)}: {NO_RESULTS} (still training, stopped before the end of training, or older "
            f"than results.json); steps, minutes and the best epoch's dev BLEU come from {rundir.LOGS_DIR}/"
            f"{rundir.EPOCHS_LOG}, the other cells are {EMPTY}.",
        ]
    return "\n".join(lines) + "\n"


def as_json(runs: list[Run], labels: list[str]) -> str:
    records = [
        {
            "run": label,
            "dir": str(run.path),
            "direction": direction(run.config),
            "model": model_name(run.config),
            "train_csv": {"steps": run.steps, "minutes": run.minutes, "best_dev_bleu": run.best_dev_bleu},
            "results": run.results,
        }
        for run, label in zip(runs, labels)
    ]
    return json.dumps(records, indent=1, ensure_ascii=False) + "\n"


def write_text(path: Path, text: str, what: str) -> None:
    """Writes a file atomically (nmt.files); a failure is one line naming the option and the file."""
    from nmt.files import atomic_write_text, write_error

    try:
        atomic_write_text(path, text, what=what)
    except OSError as error:  # the parent directory could not be made
        raise write_error(path, error, what) from None


def plot(runs: list[Run], labels: list[str], png: str) -> Path:
    from nmt.train.plotting import plot_runs

    try:
        return plot_runs([run.path for run in runs], png, labels)
    except OSError as error:
        raise UserError(f"--plot {png}: cannot write it ({error.strerror or error})") from None


# ------------------------------------------------------------------------------- the summary of RESULTS.md

ROOT = Path(__file__).resolve().parents[2]
RESULTS_MD = ROOT / "docs" / "RESULTS.md"
RESULTS_DIR = ROOT / "docs" / "results"
CONFIGS_DIR = ROOT / "configs"
MANIFEST = "runs.yaml"
SUMMARY_START, SUMMARY_END = "<!-- results-summary:start -->", "<!-- results-summary:end -->"
# config.yaml keys a summary row may set differently from the shipped config
RUN_SETTINGS = ("train.max_time", "train.epochs", "train.verbose", "corpus.src_lang", "corpus.tgt_lang")
SHOWN_SETTINGS = ("train.epochs",)  # of those, the ones the row names


def _flat(tree: dict, prefix: str = "") -> dict:
    """{"train": {"epochs": 3}} -> {"train.epochs": 3}."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _yaml(path: Path) -> dict:
    import yaml

    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise _reading_error(path, error, "a YAML mapping") from None
    if not isinstance(values, dict):
        raise UserError(f"{path}: expected a YAML mapping")
    return values


def declared_defaults() -> dict:
    """{"section.key": default} of every config field (nmt.config, which needs no TensorFlow)."""
    from nmt import config

    return {
        f"{section}.{name}": list(default) if isinstance(default, tuple) else default
        for section, cls in config.SECTIONS.items()
        for name, default, _, _ in cls.declarations()
    }


def shipped_config(run_config: dict, shipped: dict[str, dict], defaults: dict) -> tuple[str, dict] | None:
    """(name of the shipped config the run used, its differing RUN_SETTINGS {key: run value}), or None
    when the run's flat config differs from every shipped one in anything else. A key the run does not
    have (it was added later) counts as the same when the shipped file leaves it null or at its declared
    default, which keeps the earlier behaviour."""
    for name, config in shipped.items():
        differing = {}
        for key in sorted(set(run_config) | set(config)):
            if key not in run_config and (config.get(key) is None or config.get(key) == defaults.get(key, KeyError)):
                continue  # a key added after the run, set in the shipped file to what the run did
            if run_config.get(key, KeyError) != config.get(key, KeyError):
                differing[key] = run_config.get(key)
        if set(differing) <= set(RUN_SETTINGS):
            return name, differing
    return None


def beam_scores(results: dict, beam: int) -> dict | None:
    """The test scores of a record with this beam: re-decoded (`decoded`), or its test score if decoded so."""
    decoded = results.get("decoded") or {}
    if str(beam) in decoded:
        return decoded[str(beam)]
    return results.get("test") if results.get("beam_size") == beam else None


def kept_records(results_dir: Path) -> dict[str, Run]:
    """{run name: Run} of the directories under results_dir that hold a results.json. The --json files of
    scripts/results.py kept beside them (the older runs' figures, cited by RESULTS.md) must each have one."""
    records = {d.name: read_run(d) for d in sorted(results_dir.iterdir()) if (d / rundir.RESULTS_FILE).is_file()}
    for path in sorted(results_dir.glob("*.json")):
        try:
            figures = json.loads(path.read_text(encoding="utf-8"))
            names = [Path(entry["run"]).name for entry in figures]
        except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError) as error:
            raise _reading_error(path, error, "a list of scripts/results.py figures") from None
        for name in names:
            if name not in records:
                raise UserError(
                    f"{path}: run {name!r} has no record {results_dir / name / rundir.RESULTS_FILE}, and the summary "
                    f"reads those records (python scripts/results.py RUN_DIR --data DIR --keep {results_dir} "
                    "writes one)"
                )
    return records


def summary_rows(results_dir: Path = RESULTS_DIR, configs_dir: Path = CONFIGS_DIR) -> list[dict]:
    """The rows of the summary: the latest run of each shipped config, direction, budget, CPU and precision."""
    manifest = _yaml(results_dir / MANIFEST)
    entries, cpus, notes = manifest.get("runs") or {}, manifest.get("cpus") or {}, manifest.get("notes") or {}
    shipped = {p.name: _flat(_yaml(p)) for p in sorted(configs_dir.glob("*.yaml"))}
    defaults = declared_defaults()
    order = list(entries)
    latest: dict[tuple, dict] = {}
    for name, run in kept_records(results_dir).items():
        record = results_dir / name / rundir.RESULTS_FILE
        if name not in entries:
            raise UserError(f"{record}: run {name!r} is not in {results_dir / MANIFEST} (its date, CPU and note)")
        config_path = results_dir / name / rundir.CONFIG_FILE
        if run.config is None:
            raise UserError(f"{record}: run {name!r} has no {config_path}")
        digest = run.results.get("config_sha256")
        if digest is not None and digest != hashlib.sha256(config_path.read_bytes()).hexdigest():
            raise UserError(f"{record}: its config_sha256 is not the sha256 of {config_path}")
        run_config = _flat(run.config)
        match = shipped_config(run_config, shipped, defaults)
        if match is None:
            continue
        config_name, differing = match
        entry = entries[name]
        cpu = cpus.get(entry.get("cpu")) if entry.get("cpu") is not None else None
        if entry.get("cpu") is not None and cpu is None:
            raise UserError(f"{results_dir / MANIFEST}: run {name!r} names cpu {entry['cpu']!r}, not one of its cpus")
        precision = run.results.get("precision") or run_config.get("train.precision")
        if precision == "auto" and cpu is not None:  # a record older than results.json: what auto chose there
            precision = "mixed_bfloat16" if "bf16" in cpu["flags"] else "float32"
        max_time = run_config.get("train.max_time")
        beam5, greedy = beam_scores(run.results, 5) or {}, beam_scores(run.results, 1) or {}
        row = {
            "config": config_name,
            "set": ", ".join(f"{k}={differing[k]}" for k in SHOWN_SETTINGS if k in differing),
            "direction": direction(run.config) or EMPTY,
            "budget": "none" if max_time is None else f"{max_time / 60:g} min",
            "cpu": f"{cpu['name']}, {cpu['flags']}" if cpu else _text(_get(run.results, "device", "cpu")),
            "precision": precision,
            "date": str(entry["date"]),
            "run": name,
            "steps": run.results.get("steps"),
            "minutes": run.results.get("minutes"),
            "bleu_beam5": beam5.get("bleu"),
            "bleu_greedy": greedy.get("bleu"),
            "chrf_beam5": beam5.get("chrf"),
            "note": notes[entry["note"]] if entry.get("note") else "",
        }
        key = (row["config"], row["direction"], row["budget"], row["cpu"], row["precision"])
        if key not in latest or (row["date"], order.index(name)) > (
            latest[key]["date"],
            order.index(latest[key]["run"]),
        ):
            latest[key] = row
    return sorted(
        latest.values(),
        key=lambda r: (
            r["config"],
            r["direction"],
            float(r["budget"].split()[0]) if r["budget"] != "none" else 1e9,
            r["cpu"],
            r["date"],
        ),
    )


def summary_table(rows: list[dict]) -> str:
    head = ["config", "direction", "budget", "CPU", "precision", "date", "run", "steps", "minutes"]
    head += ["test BLEU beam 5", "greedy", "chrF beam 5", "note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        config = f"`configs/{r['config']}`" + (f" ({r['set']})" if r["set"] else "")
        cells = [config, r["direction"], r["budget"], r["cpu"], r["precision"], r["date"], f"`{r['run']}`"]
        cells += [_count(r["steps"]), _fixed(r["minutes"], 1), _fixed(r["bleu_beam5"], 2)]
        cells += [_fixed(r["bleu_greedy"], 2), _fixed(r["chrf_beam5"], 2), r["note"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def with_summary(results_md: str, table: str) -> str:
    """RESULTS.md's text with the table between the summary markers replaced."""
    head, rest = results_md.split(SUMMARY_START + "\n", 1)
    _, tail = rest.split(SUMMARY_END, 1)
    return f"{head}{SUMMARY_START}\n{table}{SUMMARY_END}{tail}"


def write_summary(check: bool, stdout: TextIO, stderr: TextIO, results_md: Path = RESULTS_MD) -> int:
    if not results_md.is_file() or not RESULTS_DIR.is_dir():
        raise UserError(
            f"--summary: no {results_md} or {RESULTS_DIR}; the summary is made in a checkout of the project"
        )
    text = results_md.read_text(encoding="utf-8")
    if text.count(SUMMARY_START) != 1 or text.count(SUMMARY_END) != 1:
        raise UserError(f"{results_md}: expected one {SUMMARY_START} and one {SUMMARY_END} line around the summary")
    new = with_summary(text, summary_table(summary_rows()))
    if check:
        if new != text:
            print(
                f"error: {results_md}: the summary table is out of date; run python -m nmt report --summary",
                file=stderr,
            )
            return 1
        return 0
    write_text(results_md, new, "--summary")
    print(f"wrote the summary table into {results_md}", file=stdout)
    return 0


# ------------------------------------------------------------------------------------------ the command


def main(argv=None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    args = parse_args(argv)
    try:
        if args.summary:
            return write_summary(args.check, stdout, stderr)
        runs = [read_run(path) for path in args.runs]
        labels = labels_of(runs, args.labels)
        if args.plot:
            print(f"curves of {len(runs)} run(s): {plot(runs, labels, args.plot)}", file=stderr)
        if args.json:
            write_text(Path(args.json), as_json(runs, labels), "--json")
        stdout.write(table(runs, labels))
        stdout.flush()
    except UserError as error:
        print(f"error: {error}", file=stderr, flush=True)
        return 2
    except BrokenPipeError:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The files of a training run, read and checked, and the cells of the tables made from them.

A run directory (or a record kept under docs/results/: config.yaml, train.csv and results.json side by
side, no logs/) is read by `read_run` into a `Run`: its config.yaml as a mapping, its results.json with
its fields checked (`RESULT_FIELDS`) and its per-epoch log's last step, minutes and best dev BLEU. A
damaged file is a one-line UserError naming it. `nmt report` (nmt.cli.report) makes its table from
these, and the summary of docs/RESULTS.md (nmt.cli.summary) its rows; both format cells with `cell`,
`fixed` and `count`. No TensorFlow.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

from nmt import rundir
from nmt.errors import UserError

EMPTY = "—"  # a cell without a value


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


def reading_error(path: Path, error: Exception, expected: str) -> UserError:
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
        raise reading_error(path, error, expected) from None
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
        raise reading_error(path, error, expected) from None
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
        raise reading_error(path, error, "the per-epoch log train.py writes (CSV)") from None

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


# ------------------------------------------------------------------------------------------ cells


def get(tree: dict | None, *keys):
    """tree[k1][k2]..., or None where a level is missing or not a mapping."""
    for key in keys:
        if not isinstance(tree, dict):
            return None
        tree = tree.get(key)
    return tree


def direction(config: dict | None) -> str | None:
    """The direction "de→en" of a config's corpus section, None without one."""
    src, tgt = get(config, "corpus", "src_lang"), get(config, "corpus", "tgt_lang")
    return f"{src}→{tgt}" if src and tgt else None


def model_name(config: dict | None) -> str | None:
    """The architecture, and for attention where the attention sits (bahdanau or luong)."""
    architecture = get(config, "model", "architecture")
    position = get(config, "model", "attention_position")
    if architecture == "attention" and position:
        return f"attention ({position})"
    return architecture


def cell(value) -> str:
    """A cell: "—" for nothing, lists and objects written out, no line breaks or column bars."""
    if value is None or value == "" or value == []:
        return EMPTY
    if isinstance(value, list):
        value = ", ".join(map(str, value))
    elif isinstance(value, dict):
        value = ", ".join(f"{k}: {v}" for k, v in value.items())
    return " ".join(str(value).split()).replace("|", "\\|")


def fixed(value, digits: int) -> str:
    """A number with that many decimals, "—" for None."""
    return EMPTY if value is None else f"{value:.{digits}f}"


def count(value) -> str:
    """A whole number with thousands separators, "—" for None."""
    return EMPTY if value is None else f"{int(value):,}"


def write_text(path: Path, text: str, what: str) -> None:
    """Writes a file atomically (nmt.files); a failure is one line naming the option and the file."""
    from nmt.files import atomic_write_text, write_error

    try:
        atomic_write_text(path, text, what=what)
    except OSError as error:  # the parent directory could not be made
        raise write_error(path, error, what) from None

"""The summary of docs/RESULTS.md (`python -m nmt report --summary [--check]`), from kept run records.

`--summary` writes the table of current figures at the top of docs/RESULTS.md (between its
results-summary markers) from the records kept under docs/results/: one directory per kept run with its
results.json (the schema train.py writes; the runs older than results.json were converted from
scripts/results.py's --json files beside them, with null for what was not measured then), config.yaml
and train.csv, and docs/results/runs.yaml, which says on which CPU and on which day each run ran, with
an optional note. A row is a run of a shipped config (configs/*.yaml) as the file is now: its
config.yaml may differ from the shipped one only in the time budget (train.max_time), the epoch bound
(train.epochs, shown), the progress display (train.verbose), the translation direction
(corpus.src_lang/tgt_lang), early stopping where the record says it did not stop the run, and keys that
did not exist yet and that the shipped file leaves null or at their declared default. Of the runs of one
config, direction, budget, CPU and precision the latest is shown. "test BLEU beam 5" and "chrF beam 5"
are the record's re-decoded beam-5 figures (its `decoded` field, written by scripts/results.py) or else
its test score when it was decoded with beam 5; "greedy" is the re-decoded beam-1 BLEU, "—" where the
run was not re-decoded. --check changes nothing and exits with status 1 when the table in
docs/RESULTS.md is not the one these files give.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TextIO

import yaml

from nmt import rundir
from nmt.cli.records import EMPTY, Run, cell, count, direction, fixed, get, read_run, reading_error, write_text
from nmt.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
RESULTS_MD = ROOT / "docs" / "RESULTS.md"
RESULTS_DIR = ROOT / "docs" / "results"
CONFIGS_DIR = ROOT / "configs"
MANIFEST = "runs.yaml"
SUMMARY_START, SUMMARY_END = "<!-- results-summary:start -->", "<!-- results-summary:end -->"
# config.yaml keys a summary row may set differently from the shipped config
RUN_SETTINGS = (
    "train.max_time",
    "train.epochs",
    "train.verbose",
    "corpus.src_lang",
    "corpus.tgt_lang",
    "train.keep_checkpoints",  # which checkpoints stay: no step of training changes
    "train.average_checkpoints",  # what model.keras holds at the end (the row names it)
    # the tokenizer's sample per side: the summary's runs are on Multi30k (29,000 sentences per side), which
    # every value from 29,000 up samples whole, so 1,000,000 (the earlier default) and 200,000 give one tokenizer
    "tokenizer.input_sentence_size",
)
SHOWN_SETTINGS = ("train.epochs", "train.average_checkpoints")  # of those, the ones the row names
# keys that only stop training: a run they did not stop is the run without them
EARLY_STOPPING = ("train.early_stopping_patience", "train.early_stopping_monitor")
NOT_STOPPED_EARLY = ("completed", "max_time", "max_steps")


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

    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise reading_error(path, error, "a YAML mapping") from None
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


def shipped_config(
    run_config: dict, shipped: dict[str, dict], defaults: dict, inert: tuple[str, ...] = ()
) -> tuple[str, dict] | None:
    """(name of the shipped config the run used, its differing RUN_SETTINGS {key: run value}), or None
    when the run's flat config differs from every shipped one in anything else. A key the run does not
    have (it was added later) counts as the same when the shipped file leaves it null or at its declared
    default, which keeps the earlier behaviour; a RUN_SETTINGS key it does not have had its declared default.
    `inert` keys did not act in the run (early stopping in a run it did not stop) and may differ too."""
    for name, config in shipped.items():
        differing = {}
        for key in sorted(set(run_config) | set(config)):
            if key not in run_config and (config.get(key) is None or config.get(key) == defaults.get(key, KeyError)):
                continue  # a key added after the run, set in the shipped file to what the run did
            value = run_config.get(key, defaults.get(key, KeyError) if key in RUN_SETTINGS else KeyError)
            if value != config.get(key, KeyError):
                differing[key] = value
        if set(differing) <= set(RUN_SETTINGS) | set(inert):
            return name, {k: v for k, v in differing.items() if k not in inert}
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
            raise reading_error(path, error, "a list of scripts/results.py figures") from None
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
        inert = EARLY_STOPPING if run.results.get("stopped") in NOT_STOPPED_EARLY else ()
        match = shipped_config(run_config, shipped, defaults, inert)
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
            "set": ", ".join(
                f"{k}={yaml.safe_dump(differing[k]).split(chr(10))[0]}" for k in SHOWN_SETTINGS if k in differing
            ),
            "direction": direction(run.config) or EMPTY,
            "budget": "none" if max_time is None else f"{max_time / 60:g} min",
            "cpu": f"{cpu['name']}, {cpu['flags']}" if cpu else cell(get(run.results, "device", "cpu")),
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
        cells += [count(r["steps"]), fixed(r["minutes"], 1), fixed(r["bleu_beam5"], 2)]
        cells += [fixed(r["bleu_greedy"], 2), fixed(r["chrf_beam5"], 2), r["note"]]
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

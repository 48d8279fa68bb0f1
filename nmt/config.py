"""One typed, frozen configuration per run: YAML file + `section.key=value` overrides.

A config has six sections, each a frozen dataclass whose fields are the source of truth:

    corpus:    nmt.corpus.CorpusConfig        where the parallel text is, filters, splits
    tokenizer: nmt.tokenizer.TokenizerConfig  SentencePiece training
    data:      nmt.data.DataConfig            batching, bucketing, shuffling
    model:     nmt.model.ModelConfig          architecture and sizes
    train:     TrainConfig (below)            optimisation, callbacks, checkpoints, precision
    decode:    DecodeConfig (below)           search defaults for dev BLEU, export, translate.py

Every value is checked against its field's type before the section validates its own ranges, so a
mistake is one line naming the key: `train.learning_rate: expected a number, received 'fast'`.
Overrides are parsed as YAML scalars (`--set train.epochs=3`), never executed.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nmt.corpus import CorpusConfig
from nmt.data import DataConfig
from nmt.errors import UserError
from nmt.model import ModelConfig
from nmt.tokenizer import TokenizerConfig

OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("constant", "inverse_sqrt", "plateau")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "auto")
STRATEGIES = ("default", "mirrored", "multi_worker")
MONITORS = ("bleu", "loss")


def _fail(key: str, received: Any, expected: str):
    raise UserError(f"{key}: received {received!r}, expected {expected}")


@dataclass(frozen=True)
class TrainConfig:
    """The `train:` section (see configs/*.yaml for every field with a comment)."""

    seed: int = 1234
    epochs: int = 10
    steps_per_epoch: int | None = None
    max_steps: int | None = None
    max_time: float | None = None
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8
    clip_norm: float | None = 1.0
    schedule: str = "constant"
    warmup_steps: int = 0
    plateau_monitor: str = "bleu"
    plateau_factor: float = 0.5
    plateau_patience: int = 2
    min_learning_rate: float = 1e-6
    label_smoothing: float = 0.0
    early_stopping_patience: int | None = None
    early_stopping_monitor: str = "bleu"
    eval_max_sentences: int | None = None
    eval_beam_size: int = 1
    checkpoint_every: int = 500
    precision: str = "float32"
    jit_compile: bool = False
    distribute: str = "default"
    tensorboard: bool = True
    sample_translations: int = 3
    verbose: int = 1

    def __post_init__(self):
        positive = ("epochs", "checkpoint_every", "eval_beam_size")
        for name in positive:
            if getattr(self, name) <= 0:
                _fail(f"train.{name}", getattr(self, name), "a positive integer")
        for name in (
            "steps_per_epoch",
            "max_steps",
            "max_time",
            "eval_max_sentences",
            "early_stopping_patience",
            "clip_norm",
        ):
            value = getattr(self, name)
            if value is not None and value <= 0:
                _fail(f"train.{name}", value, "a positive number or null")
        if self.learning_rate <= 0:
            _fail("train.learning_rate", self.learning_rate, "a positive number")
        for name in ("warmup_steps", "plateau_patience", "sample_translations", "weight_decay"):
            if getattr(self, name) < 0:
                _fail(f"train.{name}", getattr(self, name), "a number >= 0")
        if not 0.0 <= self.label_smoothing < 1.0:
            _fail("train.label_smoothing", self.label_smoothing, "a number in [0, 1)")
        if not 0.0 < self.plateau_factor < 1.0:
            _fail("train.plateau_factor", self.plateau_factor, "a number in (0, 1)")
        for name, choices in (
            ("optimizer", OPTIMIZERS),
            ("schedule", SCHEDULES),
            ("precision", PRECISIONS),
            ("distribute", STRATEGIES),
            ("plateau_monitor", MONITORS),
            ("early_stopping_monitor", MONITORS),
        ):
            if getattr(self, name) not in choices:
                _fail(f"train.{name}", getattr(self, name), "one of " + ", ".join(choices))
        if self.optimizer == "adam" and self.weight_decay:
            _fail("train.weight_decay", self.weight_decay, "0 with optimizer adam (use adamw)")
        if self.schedule == "inverse_sqrt" and self.warmup_steps <= 0:
            _fail("train.warmup_steps", self.warmup_steps, "a positive integer with schedule inverse_sqrt")


@dataclass(frozen=True)
class DecodeConfig:
    """The `decode:` section: defaults for dev BLEU, the exported model and translate.py."""

    beam_size: int = 5
    length_penalty: float = 0.6
    max_len_a: float = 1.5
    max_len_b: int = 10
    batch_size: int = 64
    nbest: int = 1
    max_input_len: int = 256

    def __post_init__(self):
        for name in ("beam_size", "batch_size", "nbest", "max_input_len"):
            if getattr(self, name) <= 0:
                _fail(f"decode.{name}", getattr(self, name), "a positive integer")
        if self.nbest > self.beam_size:
            _fail("decode.nbest", self.nbest, f"at most decode.beam_size ({self.beam_size})")
        if self.length_penalty < 0:
            _fail("decode.length_penalty", self.length_penalty, "a number >= 0")
        if self.max_len_a < 0 or self.max_len_b < 0 or (self.max_len_a == 0 and self.max_len_b == 0):
            _fail("decode.max_len_a", self.max_len_a, "max_len_a·|x| + max_len_b > 0")


SECTIONS: dict[str, type] = {
    "corpus": CorpusConfig,
    "tokenizer": TokenizerConfig,
    "data": DataConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "decode": DecodeConfig,
}


@dataclass(frozen=True)
class Config:
    corpus: CorpusConfig
    tokenizer: TokenizerConfig
    data: DataConfig
    model: ModelConfig
    train: TrainConfig
    decode: DecodeConfig

    def to_dict(self) -> dict:
        return {name: _plain(dataclasses.asdict(getattr(self, name))) for name in SECTIONS}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)


def _plain(value):
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _describe(tp) -> str:
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        parts = [_describe(a) for a in args if a is not type(None)]
        return " or ".join(parts) + (" or null" if type(None) in args else "")
    if origin in (tuple, list):
        return f"a list of {_describe(args[0])}s" if args else "a list"
    if origin is typing.Literal:
        return "one of " + ", ".join(map(str, args))
    return getattr(tp, "__name__", str(tp))


def _coerce(key: str, value: Any, tp) -> Any:
    """Checks `value` against the annotation `tp`; ints are accepted where floats are expected."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(key, value, arg)
            except UserError:
                continue
        _fail(key, value, _describe(tp))
    if origin is typing.Literal:
        if value in args:
            return value
        _fail(key, value, _describe(tp))
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            _fail(key, value, _describe(tp))
        item = args[0] if args else Any
        items = [_coerce(f"{key}[{i}]", v, item) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is bool:
        if isinstance(value, bool):
            return value
        _fail(key, value, "true or false")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        _fail(key, value, "an integer")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):  # YAML's .nan / .inf
                _fail(key, value, "a finite number")
            return float(value)
        _fail(key, value, "a number")
    if tp is str:
        if isinstance(value, str):
            return value
        _fail(key, value, "a string")
    return value


def build_section(name: str, values: dict | None):
    cls = SECTIONS[name]
    values = {} if values is None else values
    if not isinstance(values, dict):
        _fail(name, values, "a mapping of keys to values")
    hints = typing.get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls) if f.init]
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            raise UserError(f"{name}.{key}: unknown key; expected one of {', '.join(fields)}")
        kwargs[key] = _coerce(f"{name}.{key}", value, hints[key])
    try:
        return cls(**kwargs)
    except UserError:
        raise
    except (TypeError, ValueError) as exc:
        raise UserError(f"{name}: {exc}") from None


def from_dict(values: dict, origin: str = "config") -> Config:
    if not isinstance(values, dict):
        raise UserError(f"{origin}: expected a mapping of sections, received {type(values).__name__}")
    for key in values:
        if key not in SECTIONS:
            raise UserError(f"{origin}: unknown section {key!r}; expected some of {', '.join(SECTIONS)}")
    return Config(**{name: build_section(name, values.get(name)) for name in SECTIONS})


def parse_override(text: str) -> tuple[str, str, Any]:
    """'train.epochs=3' -> ('train', 'epochs', 3); the value is a YAML scalar or list."""
    if "=" not in text:
        raise UserError(f"--set {text}: expected section.key=value")
    path, raw = text.split("=", 1)
    parts = path.strip().split(".")
    if len(parts) != 2 or not all(parts):
        raise UserError(f"--set {text}: expected section.key=value, e.g. train.epochs=3")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return parts[0], parts[1], value


def load_dict(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: config file not found")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise UserError(f"{path}{where}: {problem}") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise UserError(f"{path}: expected a mapping of sections, received {type(values).__name__}")
    return values


def load(path: str | Path | None, overrides: list[str] = ()) -> Config:
    """The config from a YAML file (or the defaults when path is None) plus overrides."""
    values = load_dict(path) if path is not None else {}
    values = {k: (dict(v) if isinstance(v, dict) else v) for k, v in values.items()}
    for text in overrides:
        section, key, value = parse_override(text)
        if section not in SECTIONS:
            raise UserError(f"--set {text}: unknown section {section!r}; expected one of {', '.join(SECTIONS)}")
        current = values.setdefault(section, {})
        if current is None:
            current = values[section] = {}
        current[key] = value
    return from_dict(values, origin=str(path) if path else "config")


# --------------------------------------------------------------------------------------------------- reference

#: The commented config whose comments document the fields (every config lists every field; a test checks it).
REFERENCE_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "toy.yaml"


def field_comments(commented_yaml: str | Path) -> dict[str, str]:
    """{"section.key": comment} from a config file that writes every field as `  key: value  # comment`."""
    comments, section = {}, None
    for line in Path(commented_yaml).read_text(encoding="utf-8").splitlines():
        head = re.match(r"^(\w+):\s*(#.*)?$", line)
        if head:
            section = head.group(1)
            continue
        entry = re.match(r"^  (\w+):.*?\s#\s*(.*)$", line)
        if entry and section is not None:
            comments[f"{section}.{entry.group(1)}"] = entry.group(2).strip()
    return comments


def reference_markdown(commented_yaml: str | Path = REFERENCE_CONFIG) -> str:
    """The configuration reference as a Markdown table: every key of every section, its default (from
    the dataclass declarations) and its meaning (the comment in commented_yaml). README.md holds it,
    and a test checks that it is this text (regenerate: python scripts/config_reference.py)."""
    comments = field_comments(commented_yaml)
    defaults = from_dict({}).to_dict()
    rows = ["| key | default | meaning |", "|---|---|---|"]
    for section in SECTIONS:
        for key, value in defaults[section].items():
            shown = "null" if value is None else yaml.safe_dump(value, default_flow_style=True).strip()
            shown = shown.removesuffix("\n...").removesuffix("...").strip()
            meaning = comments.get(f"{section}.{key}", "").replace("|", "\\|")
            rows.append(f"| `{section}.{key}` | `{shown}` | {meaning} |")
    return "\n".join(rows) + "\n"

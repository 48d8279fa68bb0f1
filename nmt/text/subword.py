"""SentencePiece models without TensorFlow: training them, and encoding text with them in Python.

`train.py` trains the run's tokenizer and filters the training pairs with it before it imports
TensorFlow (seconds to load), so that "vocabulary too large" or "every pair filtered" is reported
at once and before an earlier run is removed by --overwrite; `nmt.text.tokenizer` (the TensorFlow side:
in-graph tokenization with tensorflow-text) builds on this module and re-exports its names.

Reserved ids and the files of a tokenizer directory are listed in `nmt.text.tokenizer`'s docstring.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import sentencepiece as spm

from nmt.config import TokenizerConfig
from nmt.errors import UserError
from nmt.files import child, write_error

PAD_ID = 0
UNK_ID = 1
BOS_ID = 2
EOS_ID = 3
SPECIAL_PIECES = {PAD_ID: "<pad>", UNK_ID: "<unk>", BOS_ID: "<s>", EOS_ID: "</s>"}

META_FILE = "tokenizer.json"
JOINT_MODEL = "joint.model"
SRC_MODEL = "src.model"
TGT_MODEL = "tgt.model"


def processor(model_proto: bytes, name: str) -> spm.SentencePieceProcessor:
    """A SentencePiece processor of a serialized model, checked to have this project's reserved ids."""
    sp = spm.SentencePieceProcessor(model_proto=model_proto)
    for i, piece in SPECIAL_PIECES.items():
        if sp.id_to_piece(i) != piece:
            raise UserError(
                f"tokenizer {name}: id {i} is {sp.id_to_piece(i)!r}, expected {piece!r}; "
                "the model was not trained by this project (pad=0, unk=1, bos=2, eos=3)"
            )
    return sp


def read_model(path: Path) -> bytes:
    """The bytes of a model file, or a one-line error naming it."""
    if not path.is_file():
        raise UserError(f"tokenizer model not found: {path}")
    try:
        return path.read_bytes()
    except OSError as error:
        raise UserError(f"{path}: cannot read the tokenizer model ({error.strerror or error})") from None


class SubwordModel:
    """Python-side encoding with one SentencePiece model (what the corpus filters need)."""

    def __init__(self, model_proto: bytes, name: str = "tokenizer"):
        self.model_proto = bytes(model_proto)
        self._sp = processor(self.model_proto, name)
        self.vocab_size = int(self._sp.get_piece_size())

    def encode(self, text: str) -> list[int]:
        """Subword ids of one sentence (no BOS/EOS)."""
        return list(self._sp.encode(text))

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return self._sp.encode(list(texts)) if texts else []


@dataclasses.dataclass(frozen=True)
class TrainedTokenizers:
    """What `train_models` produced, still in memory: the files of a tokenizer directory
    (model file name -> serialized model, and tokenizer.json's description)."""

    models: dict[str, bytes]
    meta: dict

    @property
    def src(self) -> SubwordModel:
        return SubwordModel(self.models[self.meta["src"]], name="src")

    @property
    def tgt(self) -> SubwordModel:
        return SubwordModel(self.models[self.meta["tgt"]], name="tgt")

    def pair(self) -> SubwordPair:
        src = self.src
        return SubwordPair(src, src if self.meta["src"] == self.meta["tgt"] else self.tgt)

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Writes the model file(s) and tokenizer.json into out_dir (created).
        -> {"src": path, "tgt": path, "meta": path}."""
        out = Path(out_dir)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise write_error(out, error) from None
        for name, data in self.models.items():
            _write(out / name, data)
        _write(out / META_FILE, (json.dumps(self.meta, indent=2) + "\n").encode("utf-8"))
        return {"src": out / self.meta["src"], "tgt": out / self.meta["tgt"], "meta": out / META_FILE}


@dataclasses.dataclass(frozen=True)
class SubwordPair:
    """Source and target `SubwordModel`s (``src is tgt`` when joint): the `tokenizers` argument of
    `nmt.text.corpus.filter_split` without TensorFlow."""

    src: SubwordModel
    tgt: SubwordModel

    @classmethod
    def load(cls, directory: str | Path) -> SubwordPair:
        """The models of a tokenizer directory written by `train_tokenizers`."""
        d = Path(directory)
        _, src_file, tgt_file = read_meta(d)
        src = SubwordModel(checked_model_bytes(child(d, src_file, str(d / META_FILE))), name="src")
        if tgt_file == src_file:
            return cls(src, src)
        return cls(src, SubwordModel(checked_model_bytes(child(d, tgt_file, str(d / META_FILE))), name="tgt"))


def checked_model_bytes(path: Path) -> bytes:
    """The bytes of a model file, checked to be a SentencePiece model with this project's reserved ids."""
    data = read_model(path)
    try:
        processor(data, path.name)
    except UserError as error:
        raise UserError(f"{path}: {error}") from None
    except Exception as error:  # SentencePiece refusing a damaged model file
        detail = " ".join(str(error).split())[:200]
        raise UserError(f"{path}: not a valid SentencePiece model ({type(error).__name__}: {detail})") from None
    return data


def read_meta(directory: Path) -> tuple[TokenizerConfig, str, str]:
    """tokenizer.json of a tokenizer directory -> (its config, source model file, target model file)."""
    meta_path = directory / META_FILE
    if not meta_path.is_file():
        raise UserError(f"no tokenizer in {directory}: {META_FILE} not found (train one with train_tokenizers)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        return TokenizerConfig(**meta["config"]), meta["src"], meta["tgt"]
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"{meta_path}: not a valid tokenizer description ({e})") from None


# --------------------------------------------------------------------------------------------
# Training


def _lines_of(source: Any, what: str) -> Iterator[str]:
    """Lines from: a file path (str or Path), a list of `Path` objects, or an iterable of sentences."""
    from nmt.text.corpus import CorpusSplit, check_file
    from nmt.text.textfile import read_lines

    if isinstance(source, CorpusSplit):
        raise UserError(f"{what}: pass split.sources() or split.targets(), not the split itself")
    if isinstance(source, (str, Path)):
        source = [Path(source)]
    if isinstance(source, (list, tuple)) and source and all(isinstance(x, Path) for x in source):
        for p in source:
            yield from read_lines(check_file(p, what), progress="sampling")
        return
    for i, line in enumerate(source, 1):
        if not isinstance(line, str):
            raise UserError(f"{what} item {i}: expected a string, got {type(line).__name__}")
        yield line


class Reservoir:
    """A seeded uniform sample of at most k non-empty lines of a stream (`add`), or of any items (`offer`):
    reservoir sampling by Li's Algorithm L (ACM TOMS 20(4), 1994), which draws random numbers only for the
    items it keeps (about k·log(n/k) of n), not for every item."""

    def __init__(self, k: int, seed: int):
        self.k, self.rng = k, random.Random(seed)
        self.kept: list[tuple[int, str]] = []
        self.n = 0  # non-empty lines seen
        self.w = self._shrink(1.0)
        self.next = k + self._skip()  # the index of the next non-empty line to keep, once the sample is full

    def _shrink(self, w: float) -> float:
        return w * math.exp(math.log(1.0 - self.rng.random()) / self.k)

    def _skip(self) -> int:
        if self.w >= 1.0:
            return 0
        return int(math.floor(math.log(1.0 - self.rng.random()) / math.log1p(-self.w)))

    def add(self, line: str) -> None:
        """Offers line unless it is empty or blank."""
        if line.strip():
            self.offer(line)

    def offer(self, item) -> None:
        n = self.n
        self.n = n + 1
        if n < self.k:
            self.kept.append((n, item))
        elif n == self.next:
            self.kept[self.rng.randrange(self.k)] = (n, item)
            self.w = self._shrink(self.w)
            self.next = n + 1 + self._skip()

    def sample(self) -> list:
        """The sampled lines (items) in input order."""
        return [line for _, line in sorted(self.kept)]


def sample_lines(lines: Iterable[str], k: int, seed: int) -> list[str]:
    """A seeded uniform sample of at most k non-empty lines (reservoir sampling), in input order."""
    reservoir = Reservoir(k, seed)
    for line in lines:
        reservoir.add(line)
    return reservoir.sample()


def sample_pairs(pairs: Iterable[tuple[str, str]], k: int, seed: int) -> tuple[list[str], list[str]]:
    """The samples `train_models` takes of each side, `sample_lines(sources, k, seed)` and
    `sample_lines(targets, k, seed + 1)`, drawn in one pass over the pairs (one read of a corpus)."""
    src, tgt = Reservoir(k, seed), Reservoir(k, seed + 1)
    for s, t in pairs:
        src.add(s)
        tgt.add(t)
    return src.sample(), tgt.sample()


def _train_one(cfg: TokenizerConfig, sentences: list[str], what: str) -> bytes:
    if not sentences:
        raise UserError(f"{what}: no non-empty lines to train the tokenizer on")
    import io

    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences),
            model_writer=model,
            model_type=cfg.model_type,
            vocab_size=cfg.vocab_size,
            character_coverage=float(cfg.character_coverage),
            byte_fallback=cfg.byte_fallback,
            pad_id=PAD_ID,
            unk_id=UNK_ID,
            bos_id=BOS_ID,
            eos_id=EOS_ID,
            pad_piece=SPECIAL_PIECES[PAD_ID],
            unk_piece=SPECIAL_PIECES[UNK_ID],
            bos_piece=SPECIAL_PIECES[BOS_ID],
            eos_piece=SPECIAL_PIECES[EOS_ID],
            normalization_rule_name="nmt_nfkc",
            input_sentence_size=0,
            num_threads=max(1, min(8, os.cpu_count() or 1)),
            minloglevel=2,
        )
    except RuntimeError as e:
        raise _vocab_error(cfg, str(e), what) from None
    return model.getvalue()


def _vocab_error(cfg: TokenizerConfig, message: str, what: str) -> UserError:
    """SentencePiece's training error, said in this project's terms."""
    m = re.search(r"Vocabulary size too high \((\d+)\)\. Please set it to a value <= (\d+)", message)
    if m:
        return UserError(
            f"tokenizer.vocab_size={cfg.vocab_size} is larger than the {what} training text supports; "
            f"set tokenizer.vocab_size to {m.group(2)} or less (or train on more text)"
        )
    m = re.search(r"Vocabulary size is smaller than required_chars\. (\d+) vs (\d+)", message)
    if m:
        return UserError(
            f"tokenizer.vocab_size={cfg.vocab_size} is too small for the characters of the {what} training text; "
            f"set tokenizer.vocab_size to at least {m.group(2)} (or lower tokenizer.character_coverage"
            + (", or set tokenizer.byte_fallback to false to save 256 ids)" if cfg.byte_fallback else ")")
        )
    detail = re.sub(r"^\w+: \S+\(\d+\) \[[^\]]*\] ", "", message.strip()).splitlines()[0]
    return UserError(f"SentencePiece could not train the {what} tokenizer: {detail}")


def train_tokenizers(
    cfg: TokenizerConfig,
    src: Any,
    tgt: Any,
    out_dir: str | Path,
) -> dict[str, Path]:
    """Train SentencePiece model(s) and write them with ``tokenizer.json`` into out_dir.

    ``src`` and ``tgt`` are the training sides: each an iterable of sentences (e.g.
    ``corpus.train.sources()``, a list of str), one file path (str or Path), or a list of `Path`. At most
    ``cfg.input_sentence_size`` non-empty lines per side are sampled (seeded). A joint model is
    trained on both samples together. Returns {"src": path, "tgt": path, "meta": path} (src and
    tgt are the same path for a joint model); load them with `Tokenizers.load(out_dir)`.
    """
    return train_models(cfg, src, tgt).write(out_dir)


def train_models(cfg: TokenizerConfig, src: Any, tgt: Any = None) -> TrainedTokenizers:
    """`train_tokenizers` without writing: the trained model(s) and their description, in memory. With
    tgt None, src is an iterable of (source, target) pairs (a corpus split's ``pairs()``), read once."""
    if tgt is None:
        src_sample, tgt_sample = sample_pairs(src, cfg.input_sentence_size, cfg.seed)
    else:
        src_sample = sample_lines(_lines_of(src, "tokenizer source text"), cfg.input_sentence_size, cfg.seed)
        tgt_sample = sample_lines(_lines_of(tgt, "tokenizer target text"), cfg.input_sentence_size, cfg.seed + 1)
    for side, sample in (("source", src_sample), ("target", tgt_sample)):
        if not sample:
            raise UserError(f"tokenizer {side} text: no non-empty lines to train the tokenizer on")
    if cfg.joint:
        models = {JOINT_MODEL: _train_one(cfg, src_sample + tgt_sample, "joint (source + target)")}
        names = {"src": JOINT_MODEL, "tgt": JOINT_MODEL}
    else:
        models = {SRC_MODEL: _train_one(cfg, src_sample, "source"), TGT_MODEL: _train_one(cfg, tgt_sample, "target")}
        names = {"src": SRC_MODEL, "tgt": TGT_MODEL}
    meta = {
        "config": dataclasses.asdict(cfg),
        "src": names["src"],
        "tgt": names["tgt"],
        "special_ids": {"pad": PAD_ID, "unk": UNK_ID, "bos": BOS_ID, "eos": EOS_ID},
        "sampled_sentences": {"src": len(src_sample), "tgt": len(tgt_sample)},
    }
    return TrainedTokenizers(models, meta)


def _write(path: Path, data: bytes) -> None:
    """Writes one file of a tokenizer directory (itself written under a temporary name by training)."""
    try:
        path.write_bytes(data)
    except OSError as error:
        raise write_error(path, error) from None

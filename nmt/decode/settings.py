"""The options of a translation, checked without TensorFlow: how one search runs (`SearchSettings`), how
sentences are batched for it (`Batching`), and the stream's chunk size.

Every value is validated where it is made, with a `SettingError` that names the setting (and that a
command line renames to its own option), so translate.py reports a bad option in a fraction of a second,
before it loads TensorFlow and the model. `nmt.decode.search` and `nmt.decode.graph` use these classes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from nmt.errors import UserError


class SettingError(UserError):
    """A bad setting, named as the library names it: ``beam_size: expected an integer >= 1, got 0``.

    ``settings`` holds the names (two for a conflict between settings) and ``detail`` the rest, so that a
    command line can name its own options instead (`renamed`).
    """

    def __init__(self, settings: str | tuple[str, ...], detail: str):
        self.settings = (settings,) if isinstance(settings, str) else tuple(settings)
        self.detail = detail
        super().__init__(f"{' and '.join(self.settings)}: {detail}")

    def renamed(self, names: Mapping[str, str]) -> UserError:
        """The same error with every setting renamed by names (those not in names keep theirs)."""
        return UserError(f"{' and '.join(names.get(s, s) for s in self.settings)}: {self.detail}")


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def check_int(name: str, value, minimum: int = 1) -> int:
    """value as an int; a SettingError naming ``name`` unless it is an integer >= minimum."""
    if not _is_int(value) or value < minimum:
        raise SettingError(name, f"expected an integer >= {minimum}, got {value!r}")
    return int(value)


def check_number(name: str, value) -> float:
    """value as a float; a SettingError naming ``name`` unless it is a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise SettingError(name, f"expected a finite number >= 0, got {value!r}")
    if not (math.isfinite(value) and value >= 0):
        raise SettingError(name, f"expected a finite number >= 0, got {float(value)!r}")
    return float(value)


@dataclass(frozen=True)
class SearchSettings:
    """What one search does; validated when made, so any instance is valid (and, frozen and hashable, it is
    the key of one traced function).

    beam_size: K >= 1 beams per sentence (1: greedy search). nbest: N, 1 <= N <= K hypotheses returned.
    length_penalty: the GNMT alpha >= 0 (defined in `nmt.decode.search`). max_len_a, max_len_b >= 0: the maximum
    output length a * |x| + b. attention: return the attention weights of every hypothesis.
    The defaults are those of the ``decode:`` config section (`nmt.config.DecodeConfig`).
    """

    beam_size: int = 5
    nbest: int = 1
    length_penalty: float = 0.6
    max_len_a: float = 1.5
    max_len_b: float = 10.0
    attention: bool = False

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "beam_size", check_int("beam_size", self.beam_size))
        set_(self, "nbest", check_int("nbest", self.nbest))
        if self.nbest > self.beam_size:
            raise SettingError("nbest", f"expected at most the beam size ({self.beam_size}), got {self.nbest}")
        for name in ("length_penalty", "max_len_a", "max_len_b"):
            set_(self, name, check_number(name, getattr(self, name)))
        if not isinstance(self.attention, (bool, np.bool_)):
            raise SettingError("attention", f"expected true or false, got {self.attention!r}")
        set_(self, "attention", bool(self.attention))

    @classmethod
    def from_decode(cls, decode, *, beam_size=None, nbest=None, length_penalty=None, attention=False):
        """The settings of a ``decode:`` section (`nmt.config.DecodeConfig`: the run's defaults) with the
        arguments that are not None instead. nbest defaults to decode.nbest, at most the beam size."""
        if beam_size is None:
            beam_size = decode.beam_size
        if nbest is None:
            nbest = min(decode.nbest, beam_size) if _is_int(beam_size) else decode.nbest
        return cls(
            beam_size=beam_size,
            nbest=nbest,
            length_penalty=decode.length_penalty if length_penalty is None else length_penalty,
            max_len_a=decode.max_len_a,
            max_len_b=decode.max_len_b,
            attention=attention,
        )

    def search_options(self) -> dict:
        """These settings as the keywords of `search` (and of `beam_search` / `greedy_search`)."""
        return dict(
            beam_size=self.beam_size,
            n_best=self.nbest,
            alpha=self.length_penalty,
            max_len_a=self.max_len_a,
            max_len_b=self.max_len_b,
            return_attention=self.attention,
        )


@dataclass(frozen=True)
class Batching:
    """How sentences are grouped for the search; validated when made.

    batch_size: sentences per batch; or batch_tokens: padded source tokens (rows x longest) per batch, at
    least one sentence (one of the two; batch_size 64 when neither is given). max_input_len: source tokens
    searched per sentence; a longer source is cut to its first max_input_len tokens.
    """

    batch_size: int | None = None
    batch_tokens: int | None = None
    max_input_len: int = 256

    def __post_init__(self):
        if self.batch_size is not None and self.batch_tokens is not None:
            raise SettingError(("batch_size", "batch_tokens"), "give only one of them")
        if self.batch_size is None and self.batch_tokens is None:
            object.__setattr__(self, "batch_size", 64)
        for name in ("batch_size", "batch_tokens"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, check_int(name, getattr(self, name)))
        object.__setattr__(self, "max_input_len", check_int("max_input_len", self.max_input_len))

    @classmethod
    def from_decode(cls, decode, *, batch_size=None, batch_tokens=None, max_input_len=None) -> Batching:
        """The batching of a ``decode:`` section (`nmt.config.DecodeConfig`) with the arguments that are not
        None instead (batch_size: decode.batch_size unless batch_tokens is given)."""
        if batch_size is None and batch_tokens is None:
            batch_size = decode.batch_size
        max_input_len = decode.max_input_len if max_input_len is None else max_input_len
        return cls(batch_size=batch_size, batch_tokens=batch_tokens, max_input_len=max_input_len)

    def tensors(self) -> dict:
        """The keywords of a `TranslationGraph.function` (batch_tokens 0: batches of batch_size)."""
        import tensorflow as tf

        return dict(
            batch_size=tf.constant(self.batch_size or 0, tf.int32),
            batch_tokens=tf.constant(self.batch_tokens or 0, tf.int32),
            max_input_len=tf.constant(self.max_input_len, tf.int32),
        )


def check_chunk_lines(chunk_lines) -> int:
    """The sentences translate_stream reads, sorts and translates at a time: an integer >= 1."""
    return check_int("chunk_lines", chunk_lines)

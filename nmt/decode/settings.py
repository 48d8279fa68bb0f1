"""The options of a translation, checked without TensorFlow: how one search runs (`SearchSettings`) and how
sentences are batched for it (`Batching`).

Every option has one home. Its default, bounds and comment are declared once, in the ``decode:`` config
section (`nmt.config.DecodeConfig`); the two classes here take those declarations as they are and are
validated by the same code (`nmt.config.fields.Section`), so a value is checked once, where the object is
made, whichever way it came (the command line, the config, the tuned length penalty, the Python API or the
SavedModel's signatures). An error names the setting (``decode.beam_size: received 0, expected a positive
integer``) and a command line renames it to its own option (`FieldError.renamed`), so translate.py reports
a bad option in a fraction of a second, before it loads TensorFlow and the model.

Adding a search option: declare it in `DecodeConfig` (and in the config reference), add
``name: type = _declared("name")`` to `SearchSettings`, and read ``settings.name`` in `nmt.decode.search`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from nmt.config import DecodeConfig, check_search_rules
from nmt.config.fields import FieldError, Section, setting

_UNSET = object()


def _declared(name: str, default=_UNSET, **meta):
    """The ``decode:`` section's declaration of the field name (default, bounds and comment), for a carrier
    (default / meta: where the carrier differs, e.g. None for "not given")."""
    declared = DecodeConfig.__dataclass_fields__[name]
    default = declared.default if default is _UNSET else default
    return dataclasses.field(default=default, metadata={**declared.metadata, **meta})


@dataclass(frozen=True)
class SearchSettings(Section):
    """What one search does; validated when made, so any instance is valid (and, frozen and hashable, it is
    the key of one traced function).

    beam_size: K >= 1 beams per sentence (1: greedy search). nbest: N, 1 <= N <= K hypotheses returned.
    length_penalty: the GNMT α >= 0 of lp(|y|) = ((5 + |y|) / 6)^α (`nmt.decode.search`). max_len_a,
    max_len_b >= 0: the maximum output length a·|x| + b. shortlist, shortlist_frequent: the lexical shortlist
    (`nmt.decode.shortlist`; shortlist 0: the whole vocabulary). attention: return the attention weights of
    every hypothesis. Defaults and bounds: those of `nmt.config.DecodeConfig`.
    """

    NAME = "decode"
    beam_size: int = _declared("beam_size")
    nbest: int = _declared("nbest")
    length_penalty: float = _declared("length_penalty")
    max_len_a: float = _declared("max_len_a")
    max_len_b: int = _declared("max_len_b")
    attention: bool = setting(False, "return the attention weights of every hypothesis")
    shortlist: int = _declared("shortlist")
    shortlist_frequent: int = _declared("shortlist_frequent")

    def check(self) -> None:
        check_search_rules(self)

    @classmethod
    def from_decode(
        cls, decode: DecodeConfig, *, beam_size=None, nbest=None, length_penalty=None, shortlist=None, attention=False
    ):
        """The settings of a run: its ``decode:`` section (with the tuned length penalty, `nmt.decode.tuning`)
        and the options given instead, where not None. nbest defaults to decode.nbest, at most the beam size."""
        if beam_size is None:
            beam_size = decode.beam_size
        if nbest is None:
            nbest = min(decode.nbest, beam_size) if isinstance(beam_size, int) else decode.nbest
        return cls(
            beam_size=beam_size,
            nbest=nbest,
            length_penalty=decode.length_penalty if length_penalty is None else length_penalty,
            max_len_a=decode.max_len_a,
            max_len_b=decode.max_len_b,
            shortlist=decode.shortlist if shortlist is None else shortlist,
            shortlist_frequent=decode.shortlist_frequent,
            attention=attention,
        )


@dataclass(frozen=True)
class Batching(Section):
    """How sentences are grouped for the search; validated when made.

    batch_size: sentences per batch; or batch_tokens: padded source tokens (rows x longest) per batch, at
    least one sentence (one of the two; decode.batch_size's default when neither is given). max_input_len:
    source tokens searched per sentence; a longer source is cut to its first max_input_len tokens.
    """

    NAME = "decode"
    # None (and no batch_tokens): decode's default. Only a number can be given, so errors say so.
    batch_size: int | None = _declared("batch_size", default=None, expected="a positive integer")
    batch_tokens: int | None = setting(
        None, "padded source tokens per decoding batch, instead of batch_size", min=1, expected="a positive integer"
    )
    max_input_len: int = _declared("max_input_len")

    def __post_init__(self):
        if self.batch_size is None and self.batch_tokens is None:
            object.__setattr__(self, "batch_size", DecodeConfig.batch_size)
        super().__post_init__()

    def check(self) -> None:
        if self.batch_size is not None and self.batch_tokens is not None:
            self.fail("batch_tokens", "no batch_size beside it (give one of the two)")

    @classmethod
    def from_decode(cls, decode: DecodeConfig, *, batch_size=None, batch_tokens=None, max_input_len=None):
        """The batching of a ``decode:`` section with the options given instead, where not None (batch_size:
        decode.batch_size unless batch_tokens is given)."""
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
    """The sentences a stream reads, sorts and translates at a time: an integer >= 1."""
    if isinstance(chunk_lines, bool) or not isinstance(chunk_lines, int) or chunk_lines < 1:
        raise FieldError("chunk_lines", chunk_lines, "a positive integer")
    return chunk_lines


__all__ = ["Batching", "FieldError", "SearchSettings", "check_chunk_lines"]

"""Config fields declared once: type, default, bounds and comment, and checked in one place.

A config section is a frozen dataclass deriving from `Section`; each field is declared with
`setting`, next to its type annotation:

    learning_rate: float = setting(1e-3, "peak learning rate", above=0)

The annotation is the type, `default` the default, `doc` the comment (the configuration reference in
docs/CONFIG.md and the comments of configs/toy.yaml are generated from or tested against it), and the
keywords the bounds: `choices`, `min`/`max` (inclusive), `above`/`below` (exclusive), `nonempty`
(text that is not blank). `Section.__post_init__` checks every field against its declaration (the
type first, then the bounds), then the section's `check()` (rules between fields), so a section is
valid however it was built: from YAML, from overrides or in Python. Every failure is one line:
`train.learning_rate: received 0, expected a positive number`.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, ClassVar

from nmt.errors import UserError

_UNSET = object()


class FieldError(UserError):
    """A value that breaks its field's declaration: ``decode.beam_size: received 0, expected a positive integer``.

    key is the dotted name (section.field); `renamed` gives the same error under the name the user typed
    it as (a command line's option)."""

    def __init__(self, key: str, received: Any, expected: str):
        self.key, self.received, self.expected = key, received, expected
        super().__init__(f"{key}: received {received!r}, expected {expected}")

    def renamed(self, names: dict[str, str]) -> UserError:
        """The same error with the field named as names[field] (the field's own name when not in names)."""
        name = self.key.rpartition(".")[2]
        if name not in names:
            return self
        return UserError(f"{names[name]}: received {self.received!r}, expected {self.expected}")


def fail(key: str, received: Any, expected: str):
    raise FieldError(key, received, expected)


def setting(
    default,
    doc: str,
    *,
    choices: tuple | None = None,
    min=None,  # noqa: A002  (the bound's name in the declarations)
    max=None,  # noqa: A002
    above=None,
    below=None,
    nonempty: bool = False,
    expected: str | None = None,
):
    """A field with its comment and bounds (see the module docstring). `expected` replaces the
    generated description of the allowed values in error messages where it would be unclear."""
    meta = dict(doc=doc, choices=choices, min=min, max=max, above=above, below=below, nonempty=nonempty)
    meta["expected"] = expected
    if isinstance(default, (list, dict, set)):
        raise TypeError("settings take immutable defaults (use a tuple)")
    return dataclasses.field(default=default, metadata=meta)


# ---------------------------------------------------------------------------------------------- types


def describe_type(tp) -> str:
    """'an integer', 'a number or null', 'a list of integers', ... for an annotation."""
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        parts = [describe_type(a) for a in args if a is not type(None)]
        return " or ".join(parts) + (" or null" if type(None) in args else "")
    if origin in (tuple, list):
        inner = describe_type(args[0]) if args else "value"
        return f"a list of {inner.removeprefix('an ').removeprefix('a ')}s"
    return getattr(tp, "__name__", str(tp))


def coerce(key: str, value: Any, tp) -> Any:
    """`value` checked against the annotation `tp`: ints are accepted where floats are expected (and
    become floats), lists become tuples, paths become text; non-finite floats are refused."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(key, value, arg)
            except UserError:
                continue
        fail(key, value, describe_type(tp))
    if origin in (tuple, list):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            fail(key, value, describe_type(tp))
        item = args[0] if args else Any
        items = [coerce(f"{key}[{i}]", v, item) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is bool:
        if isinstance(value, bool):
            return value
        fail(key, value, "true or false")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        fail(key, value, "an integer")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):  # YAML's .nan / .inf
                fail(key, value, "a finite number")
            return float(value)
        fail(key, value, "a number")
    if tp is str:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, str):
            return value
        fail(key, value, "a string")
    return value


# --------------------------------------------------------------------------------------------- bounds


def describe_bounds(tp, meta: dict) -> str:
    """The allowed values of a declared field, in words: 'a positive integer', 'a number in [0, 1)',
    'one of adam, adamw', 'a positive integer or null'."""
    if meta.get("expected"):
        return meta["expected"]
    optional = type(None) in typing.get_args(tp)
    base = next((a for a in typing.get_args(tp) if a is not type(None)), tp) if optional else tp
    if meta.get("choices"):
        text = "one of " + ", ".join(str(c).lower() if isinstance(c, bool) else str(c) for c in meta["choices"])
    else:
        noun = {int: "integer", float: "number"}.get(base)
        lo, hi, above, below = meta.get("min"), meta.get("max"), meta.get("above"), meta.get("below")
        if noun is None:
            text = describe_type(base)
            if meta.get("nonempty"):
                text = "a non-empty " + text.removeprefix("a ")
        elif above == 0 and hi is None and below is None:
            text = f"a positive {noun}"
        elif lo == 1 and noun == "integer" and hi is None and below is None:
            text = "a positive integer"
        elif (lo is not None or above is not None) and (hi is not None or below is not None):
            left = f"[{lo}" if lo is not None else f"({above}"
            right = f"{hi}]" if hi is not None else f"{below})"
            text = f"a {noun} in {left}, {right}"
        elif lo is not None:
            text = f"{'an' if noun == 'integer' else 'a'} {noun} >= {lo}"
        elif above is not None:
            text = f"{'an' if noun == 'integer' else 'a'} {noun} > {above}"
        else:
            text = describe_type(base)
    return text + (" or null" if optional else "")


def within(value, meta: dict) -> bool:
    """Whether a (type-checked) value satisfies its declaration's bounds."""
    if value is None:
        return True
    if meta.get("choices") is not None and value not in meta["choices"]:
        return False
    if meta.get("nonempty") and isinstance(value, str) and not value.strip():
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if meta.get("min") is not None and value < meta["min"]:
            return False
        if meta.get("max") is not None and value > meta["max"]:
            return False
        if meta.get("above") is not None and value <= meta["above"]:
            return False
        if meta.get("below") is not None and value >= meta["below"]:
            return False
    return True


# -------------------------------------------------------------------------------------------- section


@dataclasses.dataclass(frozen=True)
class Section:
    """Base of the config sections: validates every declared field, then `check()`."""

    NAME: ClassVar[str] = ""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            key, received = f"{self.NAME}.{f.name}", getattr(self, f.name)
            try:
                value = coerce(key, received, hints[f.name])
            except UserError:  # the wrong type: say everything that is allowed, not only the type
                allowed = describe_bounds(hints[f.name], f.metadata)
                if isinstance(received, float) and not math.isfinite(received):  # YAML's .nan / .inf
                    allowed = "a finite " + allowed.removeprefix("an ").removeprefix("a ")
                fail(key, received, allowed)
            if not within(value, f.metadata):
                fail(key, value, describe_bounds(hints[f.name], f.metadata))
            object.__setattr__(self, f.name, value)
        self.check()

    def check(self) -> None:
        """Rules between fields (override); raise with `self.fail(name, expected)`."""

    def fail(self, name: str, expected: str, received: Any = _UNSET):
        fail(f"{self.NAME}.{name}", getattr(self, name) if received is _UNSET else received, expected)

    @classmethod
    def from_dict(cls, values: dict):
        """Builds from a plain mapping (a YAML section), rejecting unknown keys."""
        if not isinstance(values, dict):
            fail(cls.NAME, values, "a mapping of keys to values")
        names = [f.name for f in dataclasses.fields(cls)]
        for key in values:
            if key not in names:
                raise UserError(f"{cls.NAME}.{key}: unknown key; expected one of {', '.join(names)}")
        return cls(**values)

    def to_dict(self) -> dict:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def declarations(cls) -> list[tuple[str, Any, str, str]]:
        """[(name, default, allowed values in words, comment)] in declaration order."""
        hints = typing.get_type_hints(cls)
        return [
            (f.name, f.default, describe_bounds(hints[f.name], f.metadata), f.metadata.get("doc", ""))
            for f in dataclasses.fields(cls)
        ]


def _plain(value):
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value

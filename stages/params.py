"""Parameters as data: each stage's parameters are a frozen dataclass of fields made by `param()`, which holds the
default, one line of help and the values allowed. The checks below, the `twins` commands' help, params.yaml and the
parameter reference in the docs are all made from that one declaration (docs: "Parameters")."""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from typing import Any

MAX_SEED = 2**32 - 1  # numpy and torch take any seed up to here
RANGE = re.compile(r"^([\[(])\s*(\S+?)\s*,\s*(\S+?)\s*([\])])$|^(\S+?)\.\.(\S+)$")


@dataclasses.dataclass(frozen=True)
class Allowed:
    """The values a parameter takes: a range (within "[0, 1]", "(0, 2]", or "1..64" for whole numbers, both ends
    included), a list of choices, or both (either admits a value); `pattern` admits strings that match it too."""

    within: str | None = None
    choices: tuple = ()
    pattern: str | None = None

    def bounds(self) -> tuple[float, float, bool, bool]:
        """(low, high, low included, high included) of `within`."""
        match = RANGE.match(self.within or "")
        if match is None:
            raise ValueError(f"not a range: {self.within!r}")
        if match.group(5) is not None:
            return float(match.group(5)), float(match.group(6)), True, True
        return float(match.group(2)), float(match.group(3)), match.group(1) == "[", match.group(4) == "]"

    def admits(self, value: Any) -> bool:
        if self.within is None and not self.choices and self.pattern is None:
            return True  # any value of the field's type (pipeline/params.py checks types)
        if value in self.choices and type(value) in {type(c) for c in self.choices}:
            return True
        if self.pattern is not None and isinstance(value, str) and re.fullmatch(self.pattern, value):
            return True
        if self.within is None or isinstance(value, (bool, str)) or not isinstance(value, (int, float)):
            return False
        low, high, low_in, high_in = self.bounds()
        return (low < value or (low_in and value == low)) and (value < high or (high_in and value == high))

    def text(self) -> str:
        """What the docs and error messages say is allowed ("" where any value of the field's type is)."""
        words = [str(c).lower() if isinstance(c, bool) else str(c) for c in self.choices]
        if self.pattern is not None:
            words.append(PATTERN_WORDS.get(self.pattern, self.pattern))
        if self.within is not None:
            return f"in {self.within}" if not words else f"one of {', '.join(words)} or in {self.within}"
        return f"one of {', '.join(words)}" if words else ""


PATTERN_WORDS = {r"cuda:\d+": "cuda:N"}


def param(default: Any, help: str, *, within: str | None = None, choices: tuple = (), pattern: str | None = None):
    """A parameter field: its default, one line of help (what it does, and why one would change it), and the values
    allowed (Allowed). null (None) is allowed exactly where the field's type says so."""
    return dataclasses.field(
        default=default, metadata={"help": help, "allowed": Allowed(within, tuple(choices), pattern)}
    )


class Params:
    """Base of every stage's parameter class: checks each field against its declaration (param) when it is made,
    then the class's own rules between fields (`check`). A failure is a ValueError that names the field."""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None and type(None) in typing.get_args(hints[f.name]):
                continue
            allowed: Allowed = f.metadata["allowed"]
            if isinstance(value, float) and not math.isfinite(value) or not allowed.admits(value):
                raise ValueError(f"{f.name} must be {allowed.text()}, got {value!r}")
        self.check()

    def check(self) -> None:
        """Rules that tie fields together; none by default."""


class Declared(typing.NamedTuple):
    name: str
    default: Any
    help: str
    allowed: Allowed
    type: Any  # the field's type (int, float | None, ...)

    def values(self) -> str:
        """The values allowed, in words: the declared ones, else the type's; "or null" where None is allowed."""
        options = typing.get_args(self.type) or (self.type,)
        words = self.allowed.text() or " or ".join(TYPE_WORDS.get(o, str(o)) for o in options if o is not type(None))
        return words + (", or null" if type(None) in options else "")


TYPE_WORDS = {str: "text", bool: "true or false", int: "a whole number", float: "a number"}


def declared(cls: type) -> list[Declared]:
    """Each parameter of a stage's parameter class, in declaration order."""
    hints = typing.get_type_hints(cls)
    return [
        Declared(f.name, f.default, f.metadata["help"], f.metadata["allowed"], hints[f.name])
        for f in dataclasses.fields(cls)
    ]

"""Validation of a chapter's parameters in one call (every chapter).

A chapter's first code cell holds its parameters (papermill may replace them with
anything). The cell after it validates them all, before any work, with one call::

    check_parameters(
        globals(),
        Rule("n_mc", lambda p: p["n_mc"] * p["n_classes"] <= 1.2e8, "too many draws"),
        seed=Int(min=0),
        n_mc=Int(min=10_000),
        ks=IntList(min=1, increasing=True),
        full=Bool(),
    )

Each keyword names a parameter and its specification (:class:`Int`, :class:`Float`,
:class:`Bool`, :class:`Str`, :class:`IntList`, :class:`FloatList`); the positional
:class:`Rule` objects check relations between parameters once every parameter is valid.
A bad value raises ``ValueError`` whose message starts with the parameter's name. Values
are also *normalised* and written back into the namespace: papermill's ``-r`` and some
command lines pass numbers and lists as strings (``"7"``, ``"[1, 2, 4]"``, ``"1,2,4"``),
which become ``7`` and ``[1, 2, 4]``; numpy integers become ``int``.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass

import numpy as np

from ._common import check_int, check_real

__all__ = ["check_parameters", "Int", "Float", "Bool", "Str", "IntList", "FloatList", "Rule"]


def _parse(value):
    """A string holding a Python literal becomes that literal (else unchanged)."""
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
        return value


@dataclass(frozen=True)
class _Bounded:
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class Int(_Bounded):
    """An integer in ``[min, max]``; ``power_of_two=True`` also requires ``2^j``."""

    power_of_two: bool = False

    def __call__(self, value, name: str) -> int:
        v = check_int(_parse(value), name, self.min, self.max)
        if self.power_of_two and (v < 1 or v & (v - 1)):
            raise ValueError(f"{name}: must be a power of two, got {v}")
        return v


@dataclass(frozen=True)
class Float(_Bounded):
    """A finite real number in ``[min, max]`` (``*_open``: the bound excluded)."""

    min_open: bool = False
    max_open: bool = False

    def __call__(self, value, name: str) -> float:
        return check_real(_parse(value), name, self.min, self.max,
                          self.min_open, self.max_open)


@dataclass(frozen=True)
class Bool:
    """``True`` or ``False`` (the strings ``"True"``/``"False"``, any case, accepted)."""

    def __call__(self, value, name: str) -> bool:
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        if not isinstance(value, bool | np.bool_):
            raise ValueError(f"{name}: must be True or False, got {value!r}")
        return bool(value)


@dataclass(frozen=True)
class Str:
    """A string, one of ``choices`` if given; ``nonempty=True`` rejects ``""``."""

    choices: tuple[str, ...] | None = None
    nonempty: bool = False

    def __call__(self, value, name: str) -> str:
        if not isinstance(value, str):
            raise ValueError(f"{name}: must be a string, got {value!r}")
        if self.nonempty and not value:
            raise ValueError(f"{name}: must be a non-empty string")
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"{name}: must be one of {list(self.choices)}, got {value!r}")
        return value


@dataclass(frozen=True)
class _List:
    """A non-empty list (at least ``min_len`` items) of checked items."""

    item: Int | Float
    min_len: int = 1
    increasing: bool = False

    def __call__(self, value, name: str) -> list:
        value = _parse(value)
        if isinstance(value, str):  # "1,2,4" (no brackets)
            value = [_parse(v) for v in value.split(",") if v.strip()]
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list | tuple):
            raise ValueError(f"{name}: must be a list, got {value!r}")
        if len(value) < self.min_len:
            raise ValueError(f"{name}: needs at least {self.min_len} values, got {len(value)}")
        out = [self.item(v, f"{name}[{i}]") for i, v in enumerate(value)]
        if self.increasing and any(b <= a for a, b in zip(out, out[1:])):
            raise ValueError(f"{name}: must be strictly increasing, got {out}")
        return out


def IntList(min: int | None = None, max: int | None = None, increasing: bool = False,
            min_len: int = 1) -> _List:
    """A list of integers in ``[min, max]`` (strictly increasing if asked)."""
    return _List(Int(min, max), min_len, increasing)


def FloatList(min: float | None = None, max: float | None = None, increasing: bool = False,
              min_len: int = 1) -> _List:
    """A list of finite real numbers in ``[min, max]`` (strictly increasing if asked)."""
    return _List(Float(min, max), min_len, increasing)


@dataclass(frozen=True)
class Rule:
    """A relation between parameters: ``ok(values)`` must hold, else
    ``ValueError(f"{name}: {message}")``; ``values`` maps names to normalised values."""

    name: str
    ok: Callable[[dict], bool]
    message: str


def check_parameters(namespace: MutableMapping, *rules: Rule, **specs) -> dict:
    """Validate and normalise a chapter's parameters in place; return them as a dict.

    ``namespace`` is the chapter's ``globals()``; each keyword ``name=spec`` checks
    ``namespace[name]`` with ``spec`` (see the module docstring) and writes the
    normalised value back. Then each :class:`Rule` is checked in order. Raises
    ``ValueError`` naming the first bad parameter, before any of the chapter's work.
    """
    for r in rules:
        if not isinstance(r, Rule):
            raise ValueError(f"rules: positional arguments must be Rule objects, got {r!r}")
    values = {}
    for name, spec in specs.items():
        if name not in namespace:
            raise ValueError(f"{name}: is not defined in the parameters cell")
        if not callable(spec):
            raise ValueError(f"{name}: specification must be Int(), Float(), ..., got {spec!r}")
        values[name] = spec(namespace[name], name)
    for r in rules:
        if not r.ok(values):
            raise ValueError(f"{r.name}: {r.message}")
    namespace.update(values)
    return values

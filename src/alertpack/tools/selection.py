"""Select alerts with a small expression language: ``band == 'r' and snr > 10``.

One language for every place that picks alerts: the filter box of
``alertpack browse`` and the ``--where EXPR`` option of the read tools. An
expression is parsed once (`Selection.parse`; never given to `eval`) and then
either tested on one decoded alert (`Selection.matches`; `Selection.select`
filters alerts as the read tools yield them) or evaluated on
columns of many alerts at once (`Selection.mask`, numpy), with the same
meaning.

The language
------------
Comparisons ``==`` (or ``=``), ``!=``, ``<``, ``<=``, ``>``, ``>=``, which
may be chained (``10 < snr < 50``); membership ``band in ('g', 'r')`` and
``not in``; the yes/no quantities on their own (``new``, ``ss``,
``negative``); ``and``, ``or``, ``not`` and parentheses; ``abs(x)``. Values
are numbers (``12``, ``-0.5``, ``1e4``), text in single or double quotes,
``true``, ``false`` and ``null``. Keywords are case-insensitive, names are
not. Examples::

    band == 'r' and snr > 10
    object == 8493762560815005697
    new and not ss
    band in ('g', 'r') and 20 < mag < 22.5 and mjd >= 61370
    abs(snr) > 5 or diaSource.reliability > 0.9
    ssobject != null

Names are the quantities of `QUANTITIES` (``alertpack browse`` lists them on
its help page), the same whatever the alert's schema version calls the field
(``psfFlux``/``psFlux``, ``band``/``filterName``...), or a field of the alert
itself by its schema name: ``diaSource.<field>``, ``diaObject.<field>``,
``ssSource.<field>`` and ``alert.<top-level field>``.

Missing values (a null field, a field the schema version does not have, no
diaObject): a comparison or membership test with a missing value is false,
``!=`` included; ``x == null`` is true and ``x != null`` false exactly for
missing values. ``new`` and the other yes/no quantities are never missing.

Columns for `Selection.mask`
----------------------------
A mapping of name to 1-D numpy array, one element per alert, as
`Quantity.array` builds them: numbers as float64 with NaN for missing;
ids and counts as int64 with `MISSING_INT` for missing; text as str or
object arrays with ``''`` (or `None`) for missing; yes/no as bool.
"""

from __future__ import annotations

import difflib
import enum
import math
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np

from alertpack.errors import SelectionError
from alertpack.tools.reading import (
    CUTOUT_FIELDS,
    alert_id,
    alert_object_id,
    field_value,
    is_negative,
    signal_to_noise,
)

__all__ = [
    "MAX_EXPRESSION_LENGTH",
    "MISSING_INT",
    "QUANTITIES",
    "Kind",
    "Quantity",
    "Selection",
    "ab_flux",
    "ab_magnitude",
    "literal",
    "quantity_values",
]

class _HasAlert(Protocol):
    @property
    def alert(self) -> dict[str, Any]: ...


_Read = TypeVar("_Read", bound=_HasAlert)

#: marks a missing value in the int64 columns of `Selection.mask`
MISSING_INT = np.iinfo(np.int64).min

#: longest expression accepted, characters (and at most `_MAX_DEPTH` nested parentheses)
MAX_EXPRESSION_LENGTH = 4000
_MAX_DEPTH = 64

#: AB magnitude zero point of a flux in nJy: m = 31.4 - 2.5 log10(f / nJy)
_AB_ZERO_POINT_NJY = 31.4
_MAG_PER_LN = 2.5 / math.log(10.0)


class Kind(enum.Enum):
    """What a quantity holds, which decides the comparisons it allows."""

    NUMBER = "number"
    INTEGER = "integer"  # ids and counts: compared exactly, never through float
    TEXT = "text"
    FLAG = "yes/no"
    ANY = "field"  # a schema field named with a dot: its type is known only per alert


@dataclass(frozen=True)
class Quantity:
    """A named quantity of an alert, the same across schema versions.

    Attributes
    ----------
    name : `str`
        Its name in expressions.
    kind : `Kind`
        Number, integer, text or yes/no.
    description : `str`
        One line for help pages.
    unit : `str`
        Unit of a number (``''`` when none).
    get : callable
        The value from a decoded alert (`None` when missing).
    """

    name: str
    kind: Kind
    description: str
    unit: str
    get: Callable[[dict[str, Any]], Any]

    def array(self, values: Sequence[Any]) -> np.ndarray:
        """The column of `Selection.mask` for these values (`None` = missing)."""
        return _column(self.kind, values)


def _column(kind: Kind, values: Sequence[Any]) -> np.ndarray:
    if kind is Kind.NUMBER:
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    if kind is Kind.INTEGER:
        return np.array([MISSING_INT if v is None else v for v in values], dtype=np.int64)
    if kind is Kind.FLAG:
        return np.array([bool(v) for v in values], dtype=bool)
    return np.array(["" if v is None else str(v) for v in values], dtype=object)


def ab_magnitude(
    flux: float | None, flux_err: float | None = None
) -> tuple[float | None, float | None]:
    """AB magnitude and its error of a flux in nJy; `None` for a missing or non-positive flux."""
    if flux is None or not math.isfinite(flux) or flux <= 0:
        return None, None
    magnitude = _AB_ZERO_POINT_NJY - 2.5 * math.log10(flux)
    if flux_err is None or not math.isfinite(flux_err):
        return magnitude, None
    return magnitude, _MAG_PER_LN * abs(flux_err) / flux


def ab_flux(magnitude: float) -> float:
    """The flux in nJy of an AB magnitude (the inverse of `ab_magnitude`)."""
    return float(10.0 ** ((_AB_ZERO_POINT_NJY - magnitude) / 2.5))


def _source(alert: dict[str, Any]) -> dict[str, Any] | None:
    return alert.get("diaSource")


def _from_source(quantity: str) -> Callable[[dict[str, Any]], Any]:
    def get(alert: dict[str, Any]) -> Any:
        return field_value(_source(alert), quantity)

    return get


def _science_flux(alert: dict[str, Any]) -> float | None:
    source = _source(alert)
    value = field_value(source, "scienceFlux")
    return field_value(source, "totFlux") if value is None else value


def _ss_object(alert: dict[str, Any]) -> int | None:
    # ssObject is the record of the schemas before v7, ssSource of the later ones
    for record in (_source(alert), alert.get("ssSource"), alert.get("ssObject")):
        value = field_value(record, "ssObjectId")
        if value:  # 0 is "no solar-system object" in the schemas before v8
            return value
    return None


def _designation(alert: dict[str, Any]) -> str | None:
    return field_value(alert.get("ssSource"), "designation") or field_value(
        alert.get("mpc_orbits"), "designation"
    )


def _is_new(alert: dict[str, Any]) -> bool:
    dia_object = alert.get("diaObject")
    if dia_object is None:
        return False
    n_sources = field_value(dia_object, "nDiaSources")
    if n_sources is not None:
        return n_sources <= 1
    return not alert.get("prvDiaSources")


def _visit(alert: dict[str, Any]) -> int | None:
    visit = field_value(_source(alert), "visit")
    return field_value(_source(alert), "ccdVisitId") if visit is None else visit


def _count(name: str) -> Callable[[dict[str, Any]], int]:
    def get(alert: dict[str, Any]) -> int:
        return len(alert.get(name) or ())

    return get


def _quantities() -> dict[str, Quantity]:
    def number(name, description, unit, get):
        return Quantity(name, Kind.NUMBER, description, unit, get)

    def integer(name, description, get):
        return Quantity(name, Kind.INTEGER, description, "", get)

    listed = [
        integer("id", "the alert's id (diaSourceId; alertId before v8)", alert_id),
        integer("source", "diaSource.diaSourceId", _from_source("diaSourceId")),
        integer("object", "diaObjectId (missing for solar-system sources)", alert_object_id),
        integer("ssobject", "ssObjectId of the solar-system object", _ss_object),
        Quantity("designation", Kind.TEXT, "the solar-system object's designation", "",
                 _designation),
        integer("visit", "visit (ccdVisitId in early schemas)", _visit),
        integer("detector", "detector", _from_source("detector")),
        Quantity("band", Kind.TEXT, "band (filterName before v5), e.g. 'r'", "",
                 _from_source("band")),
        number("mjd", "midpoint of the exposure", "MJD TAI", _from_source("mjd")),
        number("ra", "right ascension", "deg", _from_source("ra")),
        number("dec", "declination", "deg", _from_source("dec")),
        number("snr", "signed signal-to-noise: diaSource.snr (else psfFlux/psfFluxErr), "
               "negative for a negative difference", "",
               lambda a: signal_to_noise(_source(a))),
        number("flux", "difference-image PSF flux (psfFlux)", "nJy", _from_source("flux")),
        number("flux_err", "its error", "nJy", _from_source("flux_err")),
        number("mag", "AB magnitude of a positive psfFlux", "mag",
               lambda a: ab_magnitude(field_value(_source(a), "flux"))[0]),
        number("mag_err", "its error", "mag",
               lambda a: ab_magnitude(field_value(_source(a), "flux"),
                                      field_value(_source(a), "flux_err"))[1]),
        number("science_flux", "flux on the science image (scienceFlux, totFlux)", "nJy",
               _science_flux),
        number("science_mag", "AB magnitude of science_flux", "mag",
               lambda a: ab_magnitude(_science_flux(a))[0]),
        number("reliability", "real/bogus score, 0 (bogus) to 1 (real)", "",
               _from_source("reliability")),
        integer("n_prv", "previous diaSources in the alert", _count("prvDiaSources")),
        integer("n_forced", "forced photometry points in the alert",
                _count("prvDiaForcedSources")),
        integer("n_sources", "diaObject.nDiaSources",
                lambda a: field_value(a.get("diaObject"), "nDiaSources")),
        integer("cutouts", "number of cutouts the alert carries, 0 to 3",
                lambda a: sum(a.get(name) is not None for name in CUTOUT_FIELDS)),
        Quantity("new", Kind.FLAG, "first detection of a new diaObject (nDiaSources 1, "
                 "or no previous diaSources where the schema has no nDiaSources)", "", _is_new),
        Quantity("ss", Kind.FLAG, "a solar-system source (an ssObjectId or an ssSource)", "",
                 lambda a: _ss_object(a) is not None or a.get("ssSource") is not None),
        Quantity("negative", Kind.FLAG, "a negative difference (isNegative, or psfFlux < 0)", "",
                 lambda a: is_negative(_source(a))),
    ]
    return {quantity.name: quantity for quantity in listed}


#: every named quantity of the language, in the order help pages list them
QUANTITIES: Mapping[str, Quantity] = _quantities()

#: dotted-name prefix -> the alert field it reads (``alert.x`` is the top level)
_RECORDS = {"diaSource": "diaSource", "diaObject": "diaObject", "ssSource": "ssSource",
            "alert": None}


def quantity_values(
    alert: dict[str, Any], names: Iterable[str] | None = None
) -> dict[str, Any]:
    """The named quantities of one decoded alert (all of `QUANTITIES` by default)."""
    chosen = QUANTITIES if names is None else {name: QUANTITIES[name] for name in names}
    return {name: quantity.get(alert) for name, quantity in chosen.items()}


def literal(value: Any) -> str:
    """``value`` written as a literal of the language: quoted text, a number, true, false, null."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SelectionError(f"{value} cannot be written in a selection: give a finite number")
        return repr(value)
    text = str(value)
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return f'"{text}"'
    raise SelectionError(f"text {text!r} holds both quote characters; a selection cannot quote it")


# --- syntax tree -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Field:
    name: str
    kind: Kind


@dataclass(frozen=True)
class _Literal:
    value: Any  # int, float, str, bool or None

    @property
    def kind(self) -> Kind | None:
        if self.value is None:
            return None
        if isinstance(self.value, bool):
            return Kind.FLAG
        if isinstance(self.value, int):
            return Kind.INTEGER
        if isinstance(self.value, float):
            return Kind.NUMBER
        return Kind.TEXT


@dataclass(frozen=True)
class _Abs:
    operand: Any

    kind = Kind.NUMBER


@dataclass(frozen=True)
class _Compare:
    operands: tuple[Any, ...]
    operators: tuple[str, ...]


@dataclass(frozen=True)
class _In:
    operand: Any
    values: tuple[_Literal, ...]
    negated: bool


@dataclass(frozen=True)
class _Flag:
    field: _Field


@dataclass(frozen=True)
class _Not:
    operand: Any


@dataclass(frozen=True)
class _And:
    operands: tuple[Any, ...]


@dataclass(frozen=True)
class _Or:
    operands: tuple[Any, ...]


_BOOLEAN_NODES = (_Compare, _In, _Flag, _Not, _And, _Or)
_VALUE_NODES = (_Field, _Literal, _Abs)

_COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_ORDERED = {"<", "<=", ">", ">="}
_KEYWORDS = {"and", "or", "not", "in", "true", "false", "null", "none", "abs"}


# --- tokens and parser -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str  # "number", "text", "name", "op", "punct", "end"
    text: str
    column: int  # 1-based


_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
    | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    | (?P<text>'[^']*'|"[^"]*")
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)
    | (?P<op>==|!=|<=|>=|<|>|=)
    | (?P<punct>[(),\-])
    """,
    re.VERBOSE,
)


def _tokens(text: str) -> list[_Token]:
    tokens = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            character = text[position]
            hint = " (close the quote)" if character in "'\"" else ""
            raise _error(text, position + 1, f"unexpected character {character!r}{hint}")
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(_Token(kind, match.group(), position + 1))
        position = match.end()
    tokens.append(_Token("end", "", len(text) + 1))
    return tokens


def _error(text: str, column: int, message: str) -> SelectionError:
    return SelectionError(f"selection {text!r}, at character {column}: {message}")


class _Parser:
    """Recursive descent over `_tokens`, one method per rule of the grammar."""

    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokens(text)
        self.at = 0
        self.depth = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.at]

    def keyword(self, *words: str) -> bool:
        return self.token.kind == "name" and self.token.text.lower() in words

    def advance(self) -> _Token:
        token = self.token
        self.at += 1
        return token

    def fail(self, message: str, token: _Token | None = None) -> SelectionError:
        token = token or self.token
        return _error(self.text, token.column, message)

    def expect(self, text: str) -> None:
        if self.token.text != text:
            found = f"{self.token.text!r}" if self.token.kind != "end" else "the end"
            raise self.fail(f"expected {text!r}, found {found}")
        self.advance()

    def parse(self) -> Any:
        if self.token.kind == "end":
            raise self.fail("the selection is empty; write e.g. band == 'r' and snr > 10")
        node = self.disjunction()
        if self.token.kind != "end":
            raise self.fail(f"unexpected {self.token.text!r}; join conditions with and / or")
        return self.boolean(node, self.tokens[0])

    def disjunction(self) -> Any:
        start = self.token
        operands = [self.conjunction()]
        while self.keyword("or"):
            self.advance()
            operands.append(self.conjunction())
        if len(operands) == 1:
            return operands[0]
        return _Or(tuple(self.boolean(o, start) for o in operands))

    def conjunction(self) -> Any:
        start = self.token
        operands = [self.negation()]
        while self.keyword("and"):
            self.advance()
            operands.append(self.negation())
        if len(operands) == 1:
            return operands[0]
        return _And(tuple(self.boolean(o, start) for o in operands))

    def negation(self) -> Any:
        if self.keyword("not"):
            start = self.advance()
            return _Not(self.boolean(self.negation(), start))
        return self.comparison()

    def comparison(self) -> Any:
        start = self.token
        first = self.operand()
        if self.token.kind == "op":
            operands, operators = [first], []
            while self.token.kind == "op":
                op_token = self.advance()
                operators.append("==" if op_token.text == "=" else op_token.text)
                operands.append(self.operand())
            node = _Compare(tuple(operands), tuple(operators))
            self.check_comparison(node, start)
            return node
        negated = False
        if self.keyword("not") and self.tokens[self.at + 1].text.lower() == "in":
            self.advance()
            negated = True
        if self.keyword("in"):
            self.advance()
            membership = _In(first, self.value_list(), negated)
            self.check_membership(membership, start)
            return membership
        return first

    def value_list(self) -> tuple[_Literal, ...]:
        self.expect("(")
        values = [self.literal_value()]
        while self.token.text == ",":
            self.advance()
            values.append(self.literal_value())
        self.expect(")")
        return tuple(values)

    def literal_value(self) -> _Literal:
        node = self.operand()
        if not isinstance(node, _Literal):
            raise self.fail("a list after 'in' holds values (numbers, quoted text), not names")
        return node

    def operand(self) -> Any:
        token = self.token
        if token.text == "(":
            self.advance()
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                raise self.fail(f"more than {_MAX_DEPTH} nested parentheses")
            node = self.disjunction()
            self.expect(")")
            self.depth -= 1
            return node
        if token.text == "-":
            self.advance()
            number = self.token
            if number.kind != "number":
                raise self.fail("'-' must be followed by a number")
            self.advance()
            value = _number(number.text)
            return _Literal(-value)
        if token.kind == "number":
            self.advance()
            return _Literal(_number(token.text))
        if token.kind == "text":
            self.advance()
            return _Literal(token.text[1:-1])
        if token.kind == "name":
            return self.name()
        found = f"{token.text!r}" if token.kind != "end" else "the end"
        raise self.fail(f"expected a name or a value, found {found}")

    def name(self) -> Any:
        token = self.advance()
        word = token.text.lower()
        if word in ("true", "false"):
            return _Literal(word == "true")
        if word in ("null", "none"):
            return _Literal(None)
        if word == "abs":
            self.expect("(")
            inner = self.disjunction()
            self.expect(")")
            if not isinstance(inner, _VALUE_NODES) or inner.kind not in (
                Kind.NUMBER, Kind.INTEGER, Kind.ANY
            ):
                raise self.fail("abs() takes a number, e.g. abs(snr)", token)
            return _Abs(inner)
        if word in _KEYWORDS:
            raise self.fail(f"{token.text!r} needs a condition before it", token)
        if token.text in QUANTITIES:
            return _Field(token.text, QUANTITIES[token.text].kind)
        if "." in token.text:
            prefix = token.text.split(".", 1)[0]
            if prefix in _RECORDS:
                return _Field(token.text, Kind.ANY)
            raise self.fail(
                f"unknown record {prefix!r} in {token.text!r}; dotted names start with "
                f"{', '.join(_RECORDS)}", token,
            )
        raise self.fail(_unknown_name(token.text, self.tokens, self.at - 1), token)

    def boolean(self, node: Any, token: _Token) -> Any:
        """``node`` in a place that needs a condition: a yes/no quantity or a comparison."""
        if isinstance(node, _BOOLEAN_NODES):
            return node
        if isinstance(node, _Field) and node.kind in (Kind.FLAG, Kind.ANY):
            return _Flag(node)
        if isinstance(node, _Literal) and isinstance(node.value, bool):
            return _Compare((node, _Literal(True)), ("==",))
        what = node.name if isinstance(node, _Field) else _describe(node)
        raise self.fail(
            f"{what} is a value, not a condition; compare it, e.g. {_example(node)}", token
        )

    def check_comparison(self, node: _Compare, token: _Token) -> None:
        for left, op, right in zip(node.operands, node.operators, node.operands[1:], strict=False):
            for side in (left, right):
                if not isinstance(side, _VALUE_NODES):
                    raise self.fail("compare a name with a value, e.g. snr > 5; "
                                    "join conditions with and / or", token)
            if (isinstance(left, _Literal) and left.value is None) or (
                isinstance(right, _Literal) and right.value is None
            ):
                if op not in ("==", "!="):
                    raise self.fail(f"null can only be tested with == or !=, not {op}", token)
                continue
            _check_kinds(self, left, op, right, token)

    def check_membership(self, node: _In, token: _Token) -> None:
        if not isinstance(node.operand, _VALUE_NODES):
            raise self.fail("'in' follows a name, e.g. band in ('g', 'r')", token)
        for value in node.values:
            if value.value is None:
                raise self.fail("null cannot be in an 'in' list; test it with == null", token)
            _check_kinds(self, node.operand, "==", value, token)


def _number(text: str) -> int | float:
    if re.fullmatch(r"\d+", text):
        return int(text)
    return float(text)


def _describe(node: Any) -> str:
    if isinstance(node, _Literal):
        return literal(node.value)
    if isinstance(node, _Abs):
        return "abs(...)"
    return "this"


def _example(node: Any) -> str:
    if isinstance(node, _Field) and node.kind is Kind.TEXT:
        return f"{node.name} == 'r'"
    name = node.name if isinstance(node, _Field) else "snr"
    return f"{name} > 5"


def _check_kinds(parser: _Parser, left: Any, op: str, right: Any, token: _Token) -> None:
    kinds = {left.kind, right.kind} - {Kind.ANY}
    numeric = {Kind.NUMBER, Kind.INTEGER}
    if len(kinds) <= 1 and not (kinds == {Kind.FLAG} and op in _ORDERED):
        if kinds == {Kind.TEXT} and op in _ORDERED:
            raise parser.fail("text can only be compared with == and != (or 'in')", token)
        return
    if kinds <= numeric:
        return
    if Kind.FLAG in kinds and op in _ORDERED:
        raise parser.fail("yes/no quantities are compared with == true / == false", token)
    field = left if isinstance(left, _Field) else right
    other = right if field is left else left
    if isinstance(field, _Field) and field.kind is Kind.TEXT:
        hint = f"; quote text: {field.name} == {literal(str(_value_of(other)))}"
    elif isinstance(field, _Field) and field.kind in numeric:
        hint = f"; {field.name} is a number"
    else:
        hint = ""
    raise parser.fail(
        f"cannot compare {_kind_name(left)} with {_kind_name(right)}{hint}", token
    )


def _value_of(node: Any) -> Any:
    return node.value if isinstance(node, _Literal) else getattr(node, "name", "")


def _kind_name(node: Any) -> str:
    if isinstance(node, _Field):
        return f"{node.name} ({node.kind.value})"
    if isinstance(node, _Literal):
        return f"{literal(node.value)} ({node.kind.value if node.kind else 'null'})"
    return "abs(...) (number)"


def _unknown_name(name: str, tokens: list[_Token], at: int) -> str:
    neighbours = [tokens[i] for i in (at - 2, at - 1) if 0 <= i < len(tokens)]
    if any(t.kind == "op" for t in neighbours[-1:]) and any(
        t.kind == "name" and QUANTITIES.get(t.text, None) is not None
        and QUANTITIES[t.text].kind is Kind.TEXT for t in neighbours[:1]
    ):
        return f"unknown name {name!r}; text values are quoted: '{name}'"
    close = difflib.get_close_matches(name, list(QUANTITIES), n=1)
    guess = f"did you mean {close[0]!r}? " if close else ""
    return (
        f"unknown name {name!r}; {guess}names are {', '.join(QUANTITIES)}, "
        "or diaSource.<field>, diaObject.<field>, ssSource.<field>, alert.<field>"
    )


def _field_names(node: Any) -> set[str]:
    if isinstance(node, _Field):
        return {node.name}
    if isinstance(node, _Literal):
        return set()
    if isinstance(node, _Abs | _Flag | _Not):
        inner = node.operand if not isinstance(node, _Flag) else node.field
        return _field_names(inner)
    if isinstance(node, _In):
        return _field_names(node.operand)
    return set().union(*(_field_names(o) for o in node.operands))


# --- evaluation on one alert -----------------------------------------------------------------


def _dotted_value(alert: dict[str, Any], name: str) -> Any:
    prefix, field = name.split(".", 1)
    record = alert if _RECORDS[prefix] is None else alert.get(prefix)
    if not isinstance(record, Mapping):
        return None
    return record.get(field)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_missing(value: Any) -> bool:
    """None, NaN and empty text are missing values (as in the columns of `Selection.mask`)."""
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def _value_type(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "flag"
    if _is_number(value) or isinstance(value, np.integer | np.floating):
        return "number"
    if isinstance(value, str):
        return "text"
    return "other"


def _scalar_compare(op: str, left: Any, right: Any) -> bool:
    """``left op right`` for two present values; false for values of different types."""
    if _is_missing(left) or _is_missing(right):
        return False
    kind = _value_type(left)
    if kind != _value_type(right) or kind == "other" or (kind != "number" and op in _ORDERED):
        return False
    return bool(_COMPARISONS[op](left, right))


def _is_null(node: Any) -> bool:
    return isinstance(node, _Literal) and node.value is None


class _ScalarEvaluator:
    def __init__(self, alert: dict[str, Any]):
        self.alert = alert
        self.cache: dict[str, Any] = {}

    def value(self, node: Any) -> Any:
        if isinstance(node, _Literal):
            return node.value
        if isinstance(node, _Abs):
            inner = self.value(node.operand)
            return abs(inner) if _value_type(inner) == "number" else None
        if node.name not in self.cache:
            if node.kind is Kind.ANY:
                self.cache[node.name] = _dotted_value(self.alert, node.name)
            else:
                self.cache[node.name] = QUANTITIES[node.name].get(self.alert)
        return self.cache[node.name]

    def test(self, node: Any) -> bool:
        if isinstance(node, _And):
            return all(self.test(o) for o in node.operands)
        if isinstance(node, _Or):
            return any(self.test(o) for o in node.operands)
        if isinstance(node, _Not):
            return not self.test(node.operand)
        if isinstance(node, _Flag):
            return self.value(node.field) is True
        if isinstance(node, _In):
            value = self.value(node.operand)
            if _is_missing(value):
                return False
            found = any(_scalar_compare("==", value, v.value) for v in node.values)
            return found != node.negated
        return all(
            self.pair(left, op, right)
            for left, op, right in zip(node.operands, node.operators, node.operands[1:],
                                       strict=False)
        )

    def pair(self, left: Any, op: str, right: Any) -> bool:
        if _is_null(left) or _is_null(right):
            other = right if _is_null(left) else left
            missing = _is_null(other) or _is_missing(self.value(other))
            return missing if op == "==" else not missing
        return _scalar_compare(op, self.value(left), self.value(right))


# --- evaluation on columns -------------------------------------------------------------------


def _present(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "f":
        return ~np.isnan(values)
    if values.dtype.kind in "iu":
        return values != MISSING_INT
    if values.dtype.kind == "b":
        return np.ones(values.shape, dtype=bool)
    if values.dtype.kind == "U":
        return values != ""
    return np.array([not _is_missing(v) for v in values], dtype=bool)


def _array_type(values: np.ndarray) -> str:
    if values.dtype.kind == "b":
        return "flag"
    if values.dtype.kind in "iuf":
        return "number"
    return "mixed"  # text, or a dotted field holding values of several types


class _ColumnEvaluator:
    def __init__(self, columns: Mapping[str, np.ndarray], size: int):
        self.columns = columns
        self.size = size

    def value(self, node: Any) -> tuple[Any, np.ndarray | None]:
        """``(values, present)``: an array and its mask, or a literal and `None`."""
        if isinstance(node, _Literal):
            return node.value, None
        if isinstance(node, _Abs):
            values, present = self.value(node.operand)
            if isinstance(values, np.ndarray) and _array_type(values) == "number":
                return np.abs(values), present
            # mixed values: abs of the numbers among them, the rest missing
            magnitudes = [abs(v) if _value_type(v) == "number" else None for v in values]
            return np.array(magnitudes, dtype=object), np.array(
                [m is not None for m in magnitudes], dtype=bool
            )
        try:
            values = np.asarray(self.columns[node.name])
        except KeyError:
            raise SelectionError(
                f"{node.name} cannot be selected on here; available: "
                f"{', '.join(sorted(self.columns))}"
            ) from None
        if values.shape != (self.size,):
            raise SelectionError(
                f"column {node.name} has shape {values.shape}, not ({self.size},)"
            )
        return values, _present(values)

    def test(self, node: Any) -> np.ndarray:
        if isinstance(node, _And):
            result = np.ones(self.size, dtype=bool)
            for operand in node.operands:
                result &= self.test(operand)
            return result
        if isinstance(node, _Or):
            result = np.zeros(self.size, dtype=bool)
            for operand in node.operands:
                result |= self.test(operand)
            return result
        if isinstance(node, _Not):
            return ~self.test(node.operand)
        if isinstance(node, _Flag):
            values, _ = self.value(node.field)
            if values.dtype.kind == "b":
                return values.copy()
            return np.array([v is True or v is np.True_ for v in values], dtype=bool)
        if isinstance(node, _In):
            values, present = self.value(node.operand)
            found = np.zeros(self.size, dtype=bool)
            for item in node.values:
                if _is_text_field(node.operand) and isinstance(item.value, str):
                    found |= np.asarray(values == item.value, dtype=bool)
                else:
                    found |= self.compare("==", values, item.value)
            result = found != node.negated
            return result if present is None else result & present
        result = np.ones(self.size, dtype=bool)
        for left, op, right in zip(node.operands, node.operators, node.operands[1:],
                                   strict=False):
            result &= self.pair(left, op, right)
        return result

    def pair(self, left: Any, op: str, right: Any) -> np.ndarray:
        if _is_null(left) or _is_null(right):
            other = right if _is_null(left) else left
            if _is_null(other):
                missing = np.ones(self.size, dtype=bool)
            else:
                values, present = self.value(other)
                missing = ~present if present is not None else np.full(
                    self.size, _is_missing(values)
                )
            return missing if op == "==" else ~missing
        left_values, left_ok = self.value(left)
        right_values, right_ok = self.value(right)
        text_equality = op in ("==", "!=") and (
            (_is_text_field(left) and isinstance(right_values, str))
            or (_is_text_field(right) and isinstance(left_values, str))
        )
        if text_equality:
            # a text quantity holds only text: numpy compares the whole column at once
            result = np.asarray(_COMPARISONS[op](left_values, right_values), dtype=bool)
        else:
            result = self.compare(op, left_values, right_values)
        for ok in (left_ok, right_ok):
            if ok is not None:
                result &= ok
        return result

    def compare(self, op: str, left: Any, right: Any) -> np.ndarray:
        """``left op right`` per alert, before missing values are masked out."""
        arrays = [side for side in (left, right) if isinstance(side, np.ndarray)]
        if not arrays:
            return np.full(self.size, _scalar_compare(op, left, right))
        types = {
            _array_type(side) if isinstance(side, np.ndarray) else _value_type(side)
            for side in (left, right)
        }
        if "mixed" in types:
            # per element, with the rules of one alert
            lefts = left if isinstance(left, np.ndarray) else [left] * self.size
            rights = right if isinstance(right, np.ndarray) else [right] * self.size
            return np.array(
                [_scalar_compare(op, _python(a), _python(b))
                 for a, b in zip(lefts, rights, strict=True)],
                dtype=bool,
            )
        if len(types) != 1 or "other" in types or (types == {"flag"} and op in _ORDERED):
            return np.zeros(self.size, dtype=bool)
        with np.errstate(invalid="ignore"):
            return np.asarray(_COMPARISONS[op](left, right), dtype=bool)


def _is_text_field(node: Any) -> bool:
    return isinstance(node, _Field) and node.kind is Kind.TEXT


def _python(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


# --- the public object -----------------------------------------------------------------------


class Selection:
    """A parsed selection expression (see the module docstring for the language).

    Build one with `Selection.parse`; the empty text selects everything.
    """

    def __init__(self, text: str, tree: Any):
        self.text = text
        self._tree = tree

    @classmethod
    def parse(cls, text: str) -> Selection:
        """Parse ``text``.

        Raises
        ------
        SelectionError
            Naming the character where the expression goes wrong and how to fix it.
        """
        if not isinstance(text, str):
            raise SelectionError(f"a selection is text, not {type(text).__name__}")
        if len(text) > MAX_EXPRESSION_LENGTH:
            raise SelectionError(
                f"selection of {len(text)} characters: at most {MAX_EXPRESSION_LENGTH}"
            )
        if not text.strip():
            return cls(text, None)
        return cls(text, _Parser(text).parse())

    @property
    def selects_all(self) -> bool:
        """True for the empty selection."""
        return self._tree is None

    @property
    def names(self) -> frozenset[str]:
        """The quantity and field names the expression reads."""
        return frozenset() if self._tree is None else frozenset(_field_names(self._tree))

    def matches(self, alert: dict[str, Any]) -> bool:
        """Whether one decoded alert (any schema version) is selected."""
        if self._tree is None:
            return True
        return _ScalarEvaluator(alert).test(self._tree)

    def select(self, alerts: Iterable[_Read]) -> Iterator[_Read]:
        """The alerts read from files or Kafka (anything with ``.alert``) that it selects."""
        if self._tree is None:
            yield from alerts
            return
        for alert in alerts:
            if _ScalarEvaluator(alert.alert).test(self._tree):
                yield alert

    @classmethod
    def of_objects(cls, object_ids: Iterable[int]) -> Selection:
        """The alerts of these diaObjects: ``object == ID`` or ``object in (ID, ...)``."""
        ids = list(dict.fromkeys(int(i) for i in object_ids))
        if not ids:
            return cls.parse("")
        if len(ids) == 1:
            return cls.parse(f"object == {ids[0]}")
        return cls.parse(f"object in ({', '.join(map(str, ids))})")

    def mask(self, columns: Mapping[str, np.ndarray], size: int | None = None) -> np.ndarray:
        """Which alerts of ``columns`` are selected: a bool array.

        Parameters
        ----------
        columns : mapping of `str` to `numpy.ndarray`
            One array per name the expression reads, laid out as the module
            docstring says (`Quantity.array` builds them).
        size : `int`, optional
            Number of alerts; by default the length of the first column.

        Raises
        ------
        SelectionError
            When the expression reads a name that ``columns`` does not have.
        """
        if size is None:
            size = len(next(iter(columns.values()))) if columns else 0
        if self._tree is None:
            return np.ones(size, dtype=bool)
        return _ColumnEvaluator(columns, size).test(self._tree)

    def __and__(self, other: Selection) -> Selection:
        if self._tree is None:
            return other
        if other._tree is None:
            return self
        return Selection(f"({self.text}) and ({other.text})", _And((self._tree, other._tree)))

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Selection({self.text!r})"

"""The table's filter form, written as one selection expression of `alertpack.tools.selection`.

The form is a shortcut for the language: each filled field becomes a clause
(``band in ('g', 'r')``, ``snr >= 5``, ``new``, ``cutouts < 3`` ...), the
clauses and the free expression box are joined with ``and``, and the page
shows the whole expression, so that what the form does can be read, copied
into ``--where`` and refined by hand.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

from alertpack.errors import SelectionError
from alertpack.tools.browse.index import ROW
from alertpack.tools.selection import QUANTITIES, Selection, literal

__all__ = ["BANDS", "PAGE_SIZES", "TableQuery"]

BANDS = ("u", "g", "r", "i", "z", "y")
PAGE_SIZES = (25, 50, 100, 200)
_DEFAULT_PAGE_SIZE = 50

#: form field -> (quantity, comparison) of the numeric range fields
RANGES = {
    "mjd_min": ("mjd", ">="),
    "mjd_max": ("mjd", "<="),
    "snr_min": ("snr", ">="),
    "snr_max": ("snr", "<="),
    "flux_min": ("flux", ">="),
    "flux_max": ("flux", "<="),
    "mag_min": ("mag", ">="),
    "mag_max": ("mag", "<="),
}
_YES_NO = {"new": "new", "ss": "ss"}
_CUTOUTS = {"all": "cutouts == 3", "missing": "cutouts < 3", "none": "cutouts == 0"}


@dataclass
class TableQuery:
    """What the table shows: the filter, the order and the page, from the URL's query."""

    where: str = ""
    text: str = ""
    bands: list[str] = field(default_factory=list)
    ranges: dict[str, str] = field(default_factory=dict)
    flags: dict[str, str] = field(default_factory=dict)  # new / ss -> "yes" | "no"
    cutouts: str = ""
    sort: str = ROW
    descending: bool = False
    page: int = 1
    per_page: int = _DEFAULT_PAGE_SIZE

    @classmethod
    def from_params(
        cls, params: Mapping[str, str], bands: Sequence[str], *, default_descending: bool = False
    ) -> TableQuery:
        """Read the query of a table URL (``bands`` are the repeated ``band`` values)."""
        query = cls(descending=default_descending)
        query.where = params.get("where", "").strip()
        query.text = params.get("q", "").strip()
        query.bands = [b for b in bands if b]
        query.ranges = {
            name: params[name].strip() for name in RANGES if params.get(name, "").strip()
        }
        query.flags = {
            name: params[name] for name in _YES_NO if params.get(name) in ("yes", "no")
        }
        query.cutouts = params.get("cutouts", "") if params.get("cutouts") in _CUTOUTS else ""
        sort = params.get("sort", ROW)
        query.sort = sort if sort == ROW or sort in QUANTITIES else ROW
        if params.get("order") in ("asc", "desc"):
            query.descending = params["order"] == "desc"
        query.page = max(1, _whole(params.get("page"), 1))
        per_page = _whole(params.get("per"), _DEFAULT_PAGE_SIZE)
        query.per_page = per_page if per_page in PAGE_SIZES else _DEFAULT_PAGE_SIZE
        return query

    def expression(self) -> str:
        """The whole filter as one expression (the form's clauses, then the free one)."""
        clauses = []
        if self.bands:
            clauses.append(f"band in ({', '.join(literal(b) for b in self.bands)})")
        for name, text in self.ranges.items():
            quantity, comparison = RANGES[name]
            clauses.append(f"{quantity} {comparison} {literal(_number(name, text))}")
        for name, answer in self.flags.items():
            clauses.append(_YES_NO[name] if answer == "yes" else f"not {_YES_NO[name]}")
        if self.cutouts:
            clauses.append(_CUTOUTS[self.cutouts])
        if self.where:
            clauses.append(f"({self.where})" if clauses else self.where)
        return " and ".join(clauses)

    def selection(self) -> Selection:
        """The parsed filter.

        Raises
        ------
        SelectionError
            For a range field that is not a number or an expression that does not parse.
        """
        return Selection.parse(self.expression())

    def params(self, **changes) -> str:
        """This query as URL parameters, with ``changes`` (e.g. ``page=2``) applied."""
        values: list[tuple[str, str]] = []
        bands = changes.pop("band", self.bands)
        state = {
            "where": self.where, "q": self.text, "cutouts": self.cutouts,
            "sort": self.sort if self.sort != ROW else "",
            "order": "desc" if self.descending else "asc",
            "page": str(self.page) if self.page != 1 else "",
            "per": str(self.per_page) if self.per_page != _DEFAULT_PAGE_SIZE else "",
            **self.ranges, **self.flags,
        }
        for name, value in changes.items():
            state[name] = "" if value is None else str(value)
        values.extend((name, value) for name, value in state.items() if value)
        values.extend(("band", band) for band in bands)
        return urlencode(values)

    def sort_params(self, column: str) -> str:
        """Parameters that sort by ``column``: ascending first, then the other way round."""
        descending = not self.descending if column == self.sort else column == ROW
        return self.params(sort=column if column != ROW else "",
                           order="desc" if descending else "asc", page=None)


def _whole(text: str | None, default: int) -> int:
    try:
        return int(text) if text else default
    except ValueError:
        return default


def _number(name: str, text: str) -> float | int:
    try:
        value = float(text)
    except ValueError:
        raise SelectionError(f"{name.replace('_', ' ')}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise SelectionError(f"{name.replace('_', ' ')}: give a finite number, not {text!r}")
    whole = value.is_integer() and "." not in text and "e" not in text.lower()
    return int(value) if whole else value

"""The selection language (alertpack.tools.selection): parsing, meaning, errors, both evaluators."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alertpack.errors import ConfigError, SelectionError
from alertpack.tools.selection import (
    MISSING_INT,
    QUANTITIES,
    Kind,
    Selection,
    ab_magnitude,
    literal,
    quantity_values,
)
from broker import _sample_alert

BIG_ID = 8_493_762_560_815_005_697  # float64 cannot tell it from BIG_ID + 1


def _alert(source_id, *, band="r", snr=12.0, flux=1000.0, flux_err=80.0, mjd=61000.5,
           object_id=BIG_ID, n_sources=5, ss_id=None, designation=None, negative=False,
           cutouts=3, reliability=0.9):
    _, template = _sample_alert("11.1")
    alert = copy.deepcopy(template)
    alert["diaSourceId"] = source_id
    source = alert["diaSource"]
    source.update(diaSourceId=source_id, band=band, snr=snr, psfFlux=flux, psfFluxErr=flux_err,
                  midpointMjdTai=mjd, diaObjectId=object_id, ssObjectId=ss_id,
                  isNegative=negative, reliability=reliability)
    if object_id is None:
        alert["diaObject"] = None
    else:
        alert["diaObject"]["diaObjectId"] = object_id
        alert["diaObject"]["nDiaSources"] = n_sources
    if designation is not None:
        alert["ssSource"] = {"ssObjectId": ss_id, "designation": designation}
    for i, name in enumerate(("cutoutScience", "cutoutTemplate", "cutoutDifference")):
        alert[name] = b"FITS" if i < cutouts else None
    return alert


@pytest.fixture(scope="module")
def alerts():
    return [
        _alert(1, band="r", snr=12.0),
        _alert(2, band="g", snr=4.0, flux=300.0),
        _alert(3, band="r", snr=-15.0, flux=-1200.0, negative=True),
        _alert(4, band="i", snr=30.0, n_sources=1),  # new
        _alert(5, band="r", snr=None, flux=2000.0, flux_err=100.0),  # snr from flux/err
        _alert(6, band="z", object_id=None, ss_id=77, designation="2017 DB56"),  # asteroid
        _alert(7, band="r", object_id=BIG_ID + 1, cutouts=1, reliability=None),
        _alert(8, band="y", flux=None, flux_err=None, snr=None, mjd=61010.0),
    ]


def selected(text, alerts):
    selection = Selection.parse(text)
    return [a["diaSourceId"] for a in alerts if selection.matches(a)]


def columns_for(selection, alerts):
    """Columns as a caller builds them: Quantity.array for named quantities."""
    columns = {}
    for name in selection.names:
        if name in QUANTITIES:
            columns[name] = QUANTITIES[name].array([QUANTITIES[name].get(a) for a in alerts])
        else:
            record, field = name.split(".", 1)
            holder = [a if record == "alert" else a.get(record) for a in alerts]
            columns[name] = np.array(
                [None if h is None else h.get(field) for h in holder], dtype=object
            )
    return columns


def mask_selected(text, alerts):
    selection = Selection.parse(text)
    mask = selection.mask(columns_for(selection, alerts), size=len(alerts))
    return [a["diaSourceId"] for a, keep in zip(alerts, mask, strict=True) if keep]


# Each expression with the alerts it must select, worked out by hand from the fixture.
EXAMPLES = [
    ("band == 'r' and snr > 10", [1, 5, 7]),
    ("band = \"r\"", [1, 3, 5, 7]),
    ("snr > 10", [1, 4, 5, 6, 7]),  # 5: 2000/100 = 20; 8 has no S/N
    ("abs(snr) > 13", [3, 4, 5]),
    ("10 < snr <= 20", [1, 5, 6, 7]),
    ("new", [4]),
    ("not new", [1, 2, 3, 5, 6, 7, 8]),
    ("new == false", [1, 2, 3, 5, 6, 7, 8]),
    ("ss", [6]),
    ("ss and designation == '2017 DB56'", [6]),
    ("negative", [3]),
    ("band in ('g', 'i')", [2, 4]),
    ("band not in ('r', 'g', 'i', 'z')", [8]),
    (f"object == {BIG_ID}", [1, 2, 3, 4, 5, 8]),
    (f"object == {BIG_ID + 1}", [7]),
    ("object == null", [6]),
    ("object != null and cutouts < 3", [7]),
    ("flux != 1000", [2, 3, 5]),  # a missing flux (8) is not "!= 1000" either
    ("flux == null", [8]),
    ("mag < 24", [1, 4, 5, 6, 7]),
    ("mag < 23.5", [5]),
    ("mjd >= 61010", [8]),
    ("reliability >= 0.9 or reliability == null", [1, 2, 3, 4, 5, 6, 7, 8]),
    ("reliability > 0.5", [1, 2, 3, 4, 5, 6, 8]),
    ("diaSource.psfFluxErr > 90", [5]),
    ("diaObject.nDiaSources == 1", [4]),
    ("diaSource.isNegative", [3]),
    ("alert.cutoutTemplate == null", [7]),
    ("not (band == 'r' or ss)", [2, 4, 8]),
    ("id in (1, 3, 99)", [1, 3]),
    ("ssobject == 77 AND NOT new", [6]),
    ("", [1, 2, 3, 4, 5, 6, 7, 8]),
]


@pytest.mark.parametrize(("text", "expected"), EXAMPLES)
def test_one_alert_at_a_time(alerts, text, expected):
    assert selected(text, alerts) == sorted(expected)


@pytest.mark.parametrize(("text", "expected"), EXAMPLES)
def test_columns_give_the_same_alerts(alerts, text, expected):
    assert mask_selected(text, alerts) == sorted(expected)


def test_quantities_across_schema_versions():
    """v4 calls the fields filterName, psFlux, decl, midPointTai, alertId: same names here."""
    _, old = _sample_alert("4.0")
    values = quantity_values(old)
    source = old["diaSource"]
    assert values["band"] == source["filterName"]
    assert values["flux"] == source["psFlux"] and values["dec"] == source["decl"]
    assert values["mjd"] == source["midPointTai"]
    assert values["id"] == old["alertId"]
    assert values["visit"] == source["ccdVisitId"]
    assert Selection.parse(f"band == '{source['filterName']}' and flux > 0").matches(old)


def test_magnitudes_are_ab_from_njy():
    magnitude, error = ab_magnitude(3631e9, 3631e8)  # 3631 Jy is AB magnitude 0
    assert magnitude == pytest.approx(0.0, abs=1e-3)
    assert error == pytest.approx(2.5 / math.log(10) * 0.1)
    assert ab_magnitude(-5.0) == (None, None)
    assert ab_magnitude(None) == (None, None)


def test_columns_mark_missing_values_as_documented():
    assert QUANTITIES["object"].array([None, 5]).tolist() == [MISSING_INT, 5]
    assert np.isnan(QUANTITIES["snr"].array([None, 1.0])[0])
    assert QUANTITIES["band"].array([None, "r"]).tolist() == ["", "r"]
    assert QUANTITIES["new"].array([True, False]).dtype == bool
    assert {q.kind for q in QUANTITIES.values()} == {Kind.NUMBER, Kind.INTEGER, Kind.TEXT,
                                                      Kind.FLAG}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("band == r", "text values are quoted: 'r'"),
        ("snr", "snr is a value, not a condition; compare it, e.g. snr > 5"),
        ("bnd == 'r'", "did you mean 'band'?"),
        ("band ==", "at character 8: expected a name or a value, found the end"),
        ("(snr > 5", "expected ')'"),
        ("snr > 'a'", "cannot compare snr (number) with 'a' (text)"),
        ("band < 'r'", "text can only be compared with == and !="),
        ("new > true", "yes/no quantities are compared with == true / == false"),
        ("snr > null", "null can only be tested with == or !="),
        ("foo.bar == 1", "unknown record 'foo'"),
        ("snr > 5 snr < 9", "join conditions with and / or"),
        ("__import__('os').system('true')", "at character 17: unexpected character '.'"),
        ("__import__('os')", "unknown name '__import__'"),
        ("band == 'r", "close the quote"),
        ("abs(band) > 1", "abs() takes a number"),
        ("band in (snr)", "holds values"),
        ("   ", None),
    ],
)
def test_errors_say_where_and_how_to_fix(text, message):
    if message is None:
        assert Selection.parse(text).selects_all
        return
    with pytest.raises(SelectionError) as caught:
        Selection.parse(text)
    assert message in str(caught.value)
    assert isinstance(caught.value, ConfigError)  # an option value that cannot be used


def test_hostile_expressions_are_bounded():
    with pytest.raises(SelectionError, match="at most"):
        Selection.parse("snr > 1 and " * 1000 + "new")
    with pytest.raises(SelectionError, match="nested parentheses"):
        Selection.parse("(" * 100 + "new" + ")" * 100)
    assert Selection.parse("(" * 20 + "new" + ")" * 20).names == {"new"}


def test_mask_names_a_column_it_does_not_have(alerts):
    selection = Selection.parse("diaSource.psfChi2 > 3")
    with pytest.raises(SelectionError, match=r"diaSource.psfChi2 cannot be selected on here"):
        selection.mask({"snr": np.zeros(3)}, size=3)


def test_literal_round_trips():
    for value in ("r", "it's", 'say "hi"', 12, -3.5, True, None, BIG_ID):
        selection = Selection.parse(f"alert.target_name == {literal(value)}")
        assert selection.matches({"target_name": value})
        assert not selection.matches({"target_name": "other"})
    with pytest.raises(SelectionError):
        literal(float("nan"))


def test_selections_combine_with_and(alerts):
    both = Selection.parse("band == 'r'") & Selection.parse("snr > 15")
    assert [a["diaSourceId"] for a in alerts if both.matches(a)] == [5]
    assert (Selection.parse("") & both) is both


# Random expressions over the fixture: both evaluators must always agree.
_NAMES = ["snr", "flux", "mag", "band", "object", "new", "ss", "cutouts", "reliability",
          "diaSource.psfFlux", "diaSource.band", "diaObject.nDiaSources", "designation"]
_VALUES = {"snr": ["10", "-15.0", "null"], "flux": ["1000", "0"], "mag": ["23", "null"],
           "band": ["'r'", "'z'"], "object": [str(BIG_ID), "null"], "cutouts": ["3", "1"],
           "reliability": ["0.9", "null"], "diaSource.psfFlux": ["300", "null", "'x'"],
           "diaSource.band": ["'g'", "5"], "diaObject.nDiaSources": ["1", "5.0"],
           "designation": ["'2017 DB56'", "null"]}


@st.composite
def expressions(draw, depth=0):
    choice = draw(st.integers(0, 5 if depth < 3 else 1))
    if choice <= 1:
        name = draw(st.sampled_from(_NAMES))
        if name in ("new", "ss"):
            return name
        value = draw(st.sampled_from(_VALUES[name]))
        op = draw(st.sampled_from(["==", "!="] if "'" in value or value == "null"
                                  or name in ("band", "designation")
                                  else ["==", "!=", "<", "<=", ">", ">="]))
        return f"{name} {op} {value}"
    if choice == 2:
        return f"not ({draw(expressions(depth + 1))})"
    if choice == 3:
        return "band in ('r', 'g')" if draw(st.booleans()) else "abs(snr) > 12"
    joiner = draw(st.sampled_from(["and", "or"]))
    return f"({draw(expressions(depth + 1))}) {joiner} ({draw(expressions(depth + 1))})"


@settings(max_examples=150, deadline=None)
@given(text=expressions())
def test_both_evaluators_agree(alerts, text):
    assert selected(text, alerts) == mask_selected(text, alerts)

"""Bad input to `AlertPackager.run`, case by case and property-based.

Every case ends in one documented outcome (docs/reliability.md):

- ``alert``: alerts that lsst.alert.packet's own schema validates;
- ``error``: one `InputError` line naming the column (and, for row
  problems, the diaSourceId or row);
- a source is never dropped silently: ``n_alerts`` equals the sources given.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lsst.alert.packet import Schema
from lsst.alert.packet.schema import get_schema_root

from alertpack.config import PackageAlertsConfig
from alertpack.core import AlertPackager
from alertpack.errors import InputError
from alertpack.sample import make_visit
from alertpack.visit_inputs import VisitInputs

N_SOURCES = 6


@pytest.fixture(scope="module")
def visit_kwargs() -> dict:
    return make_visit(n_sources=N_SOURCES, image_shape=(200, 200), seed=1).run_kwargs()


@pytest.fixture(scope="module")
def official_schema() -> Schema:
    return Schema.from_file(f"{get_schema_root()}/11/1/lsst.v11_1.alert.avsc")


def fresh(visit_kwargs: dict) -> dict:
    return {name: copy.deepcopy(value) for name, value in visit_kwargs.items()}


def package(kwargs: dict, official: Schema, **config_values):
    """``("alert", result)`` with every alert valid, or ``("error", message)``."""
    config = PackageAlertsConfig()
    config.doWriteAlerts = False
    for name, value in config_values.items():
        setattr(config, name, value)
    try:
        result = AlertPackager(config).run(VisitInputs(**kwargs))
    except InputError as error:
        message = str(error)
        assert message and "\n" not in message
        return "error", message
    for record in result.alerts:
        assert official.validate(record), record["diaSourceId"]
    return "alert", result


def source_column(kwargs: dict, name: str) -> pd.Series:
    return kwargs["diaSourceCat"][name]


def first_source_id(kwargs: dict) -> int:
    return int(kwargs["diaSourceCat"].index.get_level_values("diaSourceId")[0])


# --------------------------------------------------------------------------- cases


def _set(catalog: str, column: str, value):
    def mutate(kwargs):
        frame = kwargs[catalog]
        frame[column] = frame[column].astype(object)
        frame.iloc[0, frame.columns.get_loc(column)] = value

    return mutate


def _drop(catalog: str, column: str):
    def mutate(kwargs):
        kwargs[catalog] = kwargs[catalog].drop(columns=[column])

    return mutate


def _duplicate_source(kwargs):
    frame = kwargs["diaSourceCat"]
    kwargs["diaSourceCat"] = pd.concat([frame, frame.iloc[:1]])


def _orphan_source(kwargs):
    """A source whose diaObjectId is in no object row."""
    frame = kwargs["diaSourceCat"]
    frame["diaObjectId"] = frame["diaObjectId"].astype(object)
    frame.iloc[0, frame.columns.get_loc("diaObjectId")] = 1
    tuples = list(frame.index)
    tuples[0] = (1, *tuples[0][1:])
    frame.index = pd.MultiIndex.from_tuples(tuples, names=frame.index.names)


def _lonely_object(kwargs):
    objects = kwargs["diaObjectCat"]
    extra = objects.iloc[:1].copy()
    extra.index = pd.Index([7], name=objects.index.name)
    extra["diaObjectId"] = 7
    kwargs["diaObjectCat"] = pd.concat([objects, extra])


def _shuffle_history(kwargs):
    kwargs["diaSrcHistory"] = kwargs["diaSrcHistory"].sample(frac=1.0, random_state=3)


def _empty_sources(kwargs):
    kwargs["diaSourceCat"] = kwargs["diaSourceCat"].iloc[:0]


def _position(x, y):
    def mutate(kwargs):
        frame = kwargs["diaSourceCat"]
        frame["x"] = frame["x"].astype("float32")
        frame["y"] = frame["y"].astype("float32")
        frame.iloc[0, frame.columns.get_loc("x")] = x
        frame.iloc[0, frame.columns.get_loc("y")] = y

    return mutate


def _sky(ra, dec):
    def mutate(kwargs):
        frame = kwargs["diaSourceCat"]
        frame.iloc[0, frame.columns.get_loc("ra")] = ra
        frame.iloc[0, frame.columns.get_loc("dec")] = dec

    return mutate


def _all_nan_image(kwargs):
    kwargs["diffIm"].data[...] = np.nan


def _bbox(size):
    def mutate(kwargs):
        frame = kwargs["diaSourceCat"]
        if "bboxSize" not in frame:
            frame["bboxSize"] = 30
        frame["bboxSize"] = frame["bboxSize"].astype("int64")
        frame.iloc[0, frame.columns.get_loc("bboxSize")] = size

    return mutate


#: case -> (mutation, expected outcome, text the error must hold)
CASES = {
    "extra column": (lambda k: k["diaSourceCat"].insert(0, "myColumn", 1.0), "alert", None),
    "missing required column": (_drop("diaSourceCat", "midpointMjdTai"), "error", "midpointMjdTai"),
    "missing nullable column": (_drop("diaSourceCat", "apFlux"), "alert", None),
    "wrong dtype": (_set("diaSourceCat", "psfFlux", "bright"), "error", "psfFlux"),
    "null in required integer": (_set("diaSourceCat", "visit", None), "error", "visit"),
    # pandas holds a float null as NaN, which Avro doubles carry
    "null in required float": (_set("diaSourceCat", "midpointMjdTai", None), "alert", None),
    "int out of range": (_set("diaSourceCat", "detector", 2**40), "error", "detector"),
    "NaN in a float": (_set("diaSourceCat", "psfFlux", np.nan), "alert", None),
    "inf in a float": (_set("diaSourceCat", "psfFluxErr", np.inf), "alert", None),
    "duplicate diaSourceId": (_duplicate_source, "error", "diaSourceId"),
    "source without object": (_orphan_source, "error", "no row for diaObjectId 1"),
    "object without sources": (_lonely_object, "alert", None),
    "unsorted history": (_shuffle_history, "alert", None),
    "empty source frame": (_empty_sources, "alert", None),
    "position off the image": (_position(1e6, -1e6), "alert", None),
    "position NaN": (_position(np.nan, np.nan), "alert", None),
    "sky position NaN": (_sky(np.nan, np.nan), "alert", None),
    "all-NaN difference image": (_all_nan_image, "alert", None),
    "zero bboxSize": (_bbox(0), "alert", None),
    "huge bboxSize": (_bbox(10**9), "alert", None),
    "negative bboxSize": (_bbox(-5), "alert", None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_case_has_its_documented_outcome(visit_kwargs, official_schema, case):
    mutate, expected, text = CASES[case]
    kwargs = fresh(visit_kwargs)
    n_sources = len(kwargs["diaSourceCat"])
    mutate(kwargs)
    outcome, detail = package(kwargs, official_schema)
    assert outcome == expected, detail
    if outcome == "error":
        assert text in detail
    else:
        # no source dropped silently
        assert detail.n_alerts == (0 if case == "empty source frame" else n_sources)


FLOAT_KINDS = ("float32", "float64")


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
@given(data=st.data())
def test_any_column_any_bad_value(visit_kwargs, official_schema, data):
    """A random column of a random catalog gets a random bad value, or is dropped."""
    kwargs = fresh(visit_kwargs)
    catalog = data.draw(st.sampled_from(["diaSourceCat", "diaObjectCat", "diaSrcHistory"]))
    frame = kwargs[catalog]
    column = data.draw(st.sampled_from(sorted(frame.columns)))
    action = data.draw(st.sampled_from(["drop", "nan", "inf", "null", "text", "huge"]))
    if action == "drop":
        kwargs[catalog] = frame.drop(columns=[column])
    else:
        value = {
            "nan": np.nan, "inf": -np.inf, "null": None, "text": "x", "huge": 2**70,
        }[action]
        frame[column] = frame[column].astype(object)
        frame.iloc[data.draw(st.integers(0, len(frame) - 1)), frame.columns.get_loc(column)] = value
    outcome, detail = package(kwargs, official_schema)
    if outcome == "error":
        assert column in detail or catalog in detail or "diaSourceId" in detail, detail
    else:
        assert detail.n_alerts == N_SOURCES


def test_zero_and_huge_cutout_size_are_refused_by_the_config():
    config = PackageAlertsConfig()
    for size in (0, 10**6):
        with pytest.raises(ValueError, match="outside of valid range"):
            config.cutoutSize = size

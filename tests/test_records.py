"""Catalog conformance and history grouping."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alertpack.errors import InputError
from alertpack.packets.assemble import build_alert_parts, group_history, prepare_visit
from alertpack.packets.avro_types import record_field_types
from alertpack.packets.columns import empty_catalog, row_frame
from alertpack.packets.conform import conform_table
from alertpack.schema import load_schema
from alertpack.visit_inputs import VisitInputs

SCHEMA = load_schema("11.1")
SOURCE = SCHEMA.record("diaSource")


def filled_frame(record, n, seed=0):
    """A catalog with every field of ``record`` filled, typed as empty_catalog says."""
    rng = np.random.default_rng(seed)
    template = empty_catalog(record)
    columns = {}
    for name, dtype in template.dtypes.items():
        if dtype is np.dtype(object):
            columns[name] = [f"s{i}" for i in range(n)]
        elif str(dtype) in ("boolean", "bool"):
            columns[name] = pd.array(rng.random(n) > 0.5, dtype=dtype)
        else:
            columns[name] = pd.Series(rng.integers(0, 100, n)).astype(dtype)
    return pd.DataFrame(columns)


def sources_frame(n=6):
    frame = filled_frame(SOURCE, n)
    frame["diaSourceId"] = np.arange(n, dtype=np.int64) + 1000
    frame["diaObjectId"] = np.arange(n, dtype=np.int64) // 2
    frame["midpointMjdTai"] = 61000.0 + np.arange(n)
    frame["band"] = "r"
    return frame


def test_lsst_index_layout_and_plain_columns_give_the_same_table():
    frame = sources_frame()
    indexed = frame.set_index(["diaObjectId", "band", "diaSourceId"])
    plain = conform_table(frame, SOURCE, catalog="diaSourceCat")
    from_index = conform_table(indexed, SOURCE, catalog="diaSourceCat")
    for name in plain.columns:
        np.testing.assert_array_equal(plain.columns[name], from_index.columns[name])


def test_filter_name_stands_in_for_band():
    frame = sources_frame().rename(columns={"band": "filterName"})
    table = conform_table(frame, SOURCE, catalog="diaSourceCat")
    assert list(table.columns["band"]) == ["r"] * 6


def test_types_follow_the_schema_and_extra_columns_are_ignored():
    frame = sources_frame()
    frame["notInSchema"] = "x"
    table = conform_table(frame, SOURCE, catalog="diaSourceCat")
    assert "notInSchema" not in table.columns
    assert table.columns["diaSourceId"].dtype == np.int64
    assert table.columns["detector"].dtype == np.int32
    assert table.columns["psfFlux"].dtype == np.float32
    assert table.columns["ra"].dtype == np.float64
    assert table.columns["isDipole"].dtype == np.bool_


def test_missing_nullable_column_is_null_and_missing_required_is_listed():
    frame = sources_frame().drop(columns=["psfFlux"])
    table = conform_table(frame, SOURCE, catalog="diaSourceCat")
    assert table.nulls["psfFlux"].all()
    with pytest.raises(InputError, match=r"lacks column\(s\) ra, x .*schemaVersion"):
        conform_table(sources_frame().drop(columns=["ra", "x"]), SOURCE, catalog="diaSourceCat")


def test_nan_is_null_where_nullable_and_kept_where_required():
    frame = sources_frame()
    frame["psfFlux"] = np.nan
    frame["x"] = np.nan
    table = conform_table(frame, SOURCE, catalog="diaSourceCat")
    assert table.nulls["psfFlux"].all()
    assert np.isnan(table.columns["x"]).all() and "x" not in table.nulls


def test_null_in_a_required_integer_is_an_error_naming_rows():
    frame = sources_frame()
    frame["psfNdata"] = pd.array([1, None, 3, 4, None, 6], dtype="Int32")
    with pytest.raises(InputError, match=r"'psfNdata' is null at rows \[1, 4\]"):
        conform_table(frame, SOURCE, catalog="diaSourceCat")


@pytest.mark.parametrize(
    "column, values, message",
    [
        ("psfNdata", [2**31] * 6, "32-bit Avro int"),
        ("visit", [1.5] * 6, "whole numbers"),
        ("psfFlux", [1e39] * 6, "32-bit Avro float"),
        ("band", [1] * 6, "must hold str"),
        ("isDipole", ["yes"] * 6, "booleans"),
    ],
)
def test_unrepresentable_values_fail_clearly(column, values, message):
    frame = sources_frame()
    frame[column] = values
    with pytest.raises(InputError, match=message):
        conform_table(frame, SOURCE, catalog="diaSourceCat")


@pytest.mark.parametrize(
    "value, message", [(1.5, r"1\.5 is not a whole number"), (np.inf, "infinity")]
)
def test_fractional_or_infinite_python_numbers_are_not_integers(value, message):
    frame = sources_frame()
    frame["visit"] = frame["visit"].astype(object)
    frame.loc[2, "visit"] = value
    with pytest.raises(InputError, match=rf"column 'visit' must hold integers .*{message}"):
        conform_table(frame, SOURCE, catalog="diaSourceCat")


def test_conformed_tables_are_marked_and_read_only():
    table = conform_table(sources_frame(), SOURCE, catalog="diaSourceCat")
    assert table.conformance.covers(table, record_field_types(SOURCE))
    with pytest.raises(ValueError, match="read-only"):
        table.columns["ra"][0] = 1.0
    table.columns["ra"] = table.columns["ra"] + 1.0
    assert not table.conformance.covers(table, record_field_types(SOURCE))


def test_extreme_longs_and_nullable_ints_survive():
    frame = sources_frame()
    frame["diaSourceId"] = [2**63 - 1, -(2**63), 0, 1, 2, 3]
    frame["trailAlgorithm"] = pd.array([1, None, 3, None, 5, 6], dtype="Int64")
    table = conform_table(frame, SOURCE, catalog="diaSourceCat")
    assert table.columns["diaSourceId"][0] == 2**63 - 1
    assert list(table.nulls["trailAlgorithm"]) == [False, True, False, True, False, False]


def test_history_window_order_and_exclusion():
    history = conform_table(sources_frame(), SOURCE, catalog="diaSrcHistory")
    history.columns["midpointMjdTai"] = np.array([5.0, 1.0, 400.0, 0.5, 3.0, 2.0]) + 60000
    history.columns["diaObjectId"] = np.array([7, 7, 7, 8, 7, 9])
    alerts_objects = np.array([7, 8, 10])
    alerts_times = np.array([60401.0, 60001.0, 60001.0])
    alert_ids = np.array([1, 1003, 2])
    offsets, index = group_history(
        alerts_objects, alerts_times, alert_ids, history, id_column="diaSourceId",
        window_days=365.0,
    )
    # object 7: rows at 60400 (kept), 60005, 60003, 60001 are > 365 d before 60401? no:
    # 60401 - 365 = 60036, so only the row at 60400 stays.
    assert offsets.tolist() == [0, 1, 1, 1]
    assert index.tolist() == [2]
    offsets, index = group_history(
        alerts_objects, np.array([60401.0, 60001.0, 60001.0]), alert_ids, history,
        id_column="diaSourceId", window_days=1000.0,
    )
    assert index[offsets[0]:offsets[1]].tolist() == [1, 4, 0, 2]  # time-ordered
    # the alert's own source (1003, object 8) is never its own history
    assert offsets[2] - offsets[1] == 0


def test_prepare_visit_requires_ccd_visit_or_bits():
    frame = sources_frame().drop(columns=["visit", "detector"])
    schema = load_schema("7.4")
    with pytest.raises(InputError):
        prepare_visit(SCHEMA, VisitInputs(diaSourceCat=frame))
    catalogs = prepare_visit(
        SCHEMA, VisitInputs(diaSourceCat=sources_frame(), ccdExposureIdBits=20)
    )
    assert (catalogs.ccd_visit_ids == catalogs.sources.columns["diaSourceId"] >> 44).all()
    assert schema.version.major == 7


def test_orphan_source_without_object_is_an_error_naming_ids():
    sources = sources_frame()
    objects = filled_frame(SCHEMA.record("diaObject"), 2)
    objects["diaObjectId"] = [0, 1]
    catalogs = prepare_visit(
        SCHEMA, VisitInputs(diaSourceCat=sources, diaObjectCat=objects, ccdExposureIdBits=20)
    )
    with pytest.raises(InputError, match="no row for diaObjectId 2"):
        build_alert_parts(catalogs, {}, window_days=365)


def test_duplicate_ids_are_refused():
    sources = sources_frame()
    sources["diaSourceId"] = 5
    with pytest.raises(InputError, match="duplicate diaSourceId"):
        prepare_visit(SCHEMA, VisitInputs(diaSourceCat=sources, ccdExposureIdBits=20))


def test_row_frame_recovers_index_keys_from_a_series():
    objects = filled_frame(SCHEMA.record("diaObject"), 3)
    objects["diaObjectId"] = [4, 5, 6]
    row = objects.set_index("diaObjectId").loc[5]
    frame = row_frame(row, ("diaObjectId",), "diaObject")
    assert frame["diaObjectId"].tolist() == [5]
    with pytest.raises(InputError, match="Series, a dict"):
        row_frame([1, 2], (), "diaObject")


def _same_tables(left, right):
    assert left.n_rows == right.n_rows and list(left.columns) == list(right.columns)
    for name in left.columns:
        np.testing.assert_array_equal(left.columns[name], right.columns[name], err_msg=name)
        assert left.columns[name].dtype == right.columns[name].dtype, name
        left_nulls, right_nulls = left.nulls.get(name), right.nulls.get(name)
        assert (left_nulls is None) == (right_nulls is None), name
        if left_nulls is not None:
            np.testing.assert_array_equal(left_nulls, right_nulls, err_msg=name)


def test_arrow_tables_conform_like_dataframes(tmp_path):
    """A Parquet file read by pyarrow gives the table pandas.read_parquet gives."""
    pq = pytest.importorskip("pyarrow.parquet")
    frame = sources_frame(8)
    frame["trailAlgorithm"] = pd.array([1, None, 3, None, 5, 6, 7, 8], dtype="Int64")
    frame["diaObjectId"] = np.array([2**62 + 1] * 4 + [3] * 4, dtype=np.int64)
    frame.loc[2, "psfFlux"] = np.nan
    frame["band"] = pd.array(["r", "g", None, "r", "i", "z", "y", "u"], dtype=object)
    path = tmp_path / "sources.parquet"
    frame.to_parquet(path, index=False)
    from_pandas = conform_table(pd.read_parquet(path), SOURCE, catalog="diaSourceCat")
    from_arrow = conform_table(pq.ParquetFile(path).read(), SOURCE, catalog="diaSourceCat")
    _same_tables(from_pandas, from_arrow)
    assert from_arrow.columns["diaObjectId"][0] == 2**62 + 1  # 64-bit ids exact
    assert from_arrow.nulls["trailAlgorithm"].tolist() == [False, True] * 2 + [False] * 4


def test_arrow_table_errors_name_the_column():
    pa = pytest.importorskip("pyarrow")
    table = pa.Table.from_pandas(sources_frame().assign(psfNdata=[2**31] * 6))
    with pytest.raises(InputError, match=r"'psfNdata' .*32-bit Avro int"):
        conform_table(table, SOURCE, catalog="diaSourceCat")
    table = pa.Table.from_pandas(sources_frame().drop(columns=["ra"]))
    with pytest.raises(InputError, match=r"diaSourceCat lacks column\(s\) ra"):
        conform_table(table, SOURCE, catalog="diaSourceCat")


def test_sliced_arrow_tables_with_nulls_conform_like_dataframes():
    """Arrow buffers are read at each chunk's offset, nulls included."""
    pa = pytest.importorskip("pyarrow")
    frame = sources_frame(10)
    frame["trailAlgorithm"] = pd.array([1, None] * 5, dtype="Int64")
    frame["isDipole"] = pd.array([True, None, False, True, None] * 2, dtype="boolean")
    frame["psfFlux"] = np.where(np.arange(10) % 3 == 0, np.nan, 1.5)
    table = pa.concat_tables([pa.Table.from_pandas(frame.iloc[:4], preserve_index=False),
                              pa.Table.from_pandas(frame.iloc[4:], preserve_index=False)])
    expected = conform_table(frame.iloc[3:].reset_index(drop=True), SOURCE, catalog="c")
    _same_tables(conform_table(table.slice(3), SOURCE, catalog="c"), expected)

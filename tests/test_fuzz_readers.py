"""Fuzz every reader a user can point at a file or a topic with mutated real alert files.

Mutations of a real alert file (truncate, flip bits, overwrite, splice two
files) go through ``alertpack.cli.main`` in-process, as the console script
runs them: the exit status is 0, 1 or 2 and no exception escapes (a traceback
would fail the test). A short derandomized run is part of the default suite;
``-m soak`` runs many more random examples.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alertpack.cli import main as cli_main
from alertpack.packets.batch import OutgoingAlert
from alertpack.sinks.failed import FailedAlert, write_failed_alerts

SUPPRESSED = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]

#: examples per reader in the default (CI) run, and in the soak run
QUICK = {"inspect": 25, "validate": 8, "show": 4, "to-parquet": 12, "replay": 12}
SOAK_FACTOR = 40


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, bytes]:
    """Real files to mutate: a 2-alert file of the sample visit, and a failed-alerts file."""
    folder = tmp_path_factory.mktemp("seeds")
    argv = ["package", "--sample", "--n-sources", "4", "--image-size", "200x200", "-o", str(folder)]
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli_main(argv) == 0
    (alerts,) = folder.glob("*.avro")
    with alerts.open("rb") as stream:
        reader = fastavro.reader(stream)
        records, schema = list(reader), reader.writer_schema
    two = io.BytesIO()
    fastavro.writer(two, fastavro.parse_schema(schema), records[:2])
    payload = io.BytesIO()
    fastavro.schemaless_writer(payload, fastavro.parse_schema(schema), records[0])
    alert = OutgoingAlert(payload.getvalue(), 1101, 1, None, records[0]["diaSourceId"])
    failed = write_failed_alerts(
        [FailedAlert(alert, "alerts", "broker down", 0)], folder / "failed"
    )
    return {"alerts": two.getvalue(), "failed": failed.read_bytes()}


@st.composite
def mutated(draw, seed: bytes) -> bytes:
    """``seed`` truncated, with bits flipped, bytes overwritten, or spliced with itself."""
    data = bytearray(seed)
    kind = draw(st.sampled_from(["truncate", "flip", "overwrite", "splice", "mix"]))
    if kind in ("truncate", "mix"):
        del data[draw(st.integers(0, len(data))) :]
    if kind in ("flip", "mix") and data:
        for position in draw(st.lists(st.integers(0, len(data) - 1), min_size=1, max_size=8)):
            data[position] ^= 1 << draw(st.integers(0, 7))
    if kind == "overwrite" and data:
        start = draw(st.integers(0, len(data) - 1))
        chunk = draw(st.binary(min_size=1, max_size=64))
        data[start : start + len(chunk)] = chunk
    if kind == "splice":
        cut, other = draw(st.integers(0, len(data))), draw(st.integers(0, len(seed)))
        data = data[:cut] + seed[other:]
    return bytes(data)


def run_reader(command: str, content: bytes) -> None:
    """Run ``command`` on ``content`` in-process; only exit statuses 0, 1, 2 are allowed."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzzed.avro"
        path.write_bytes(content)
        argv = {
            "inspect": ["inspect", str(path)],
            "validate": ["validate", str(path)],
            "show": ["show", str(path), "-o", f"{folder}/plot.png"],
            "to-parquet": ["to-parquet", str(path), "-o", f"{folder}/parquet"],
            # an unreachable broker: a readable file ends in "failed again" (1)
            "replay": ["replay", str(path), "--server", "127.0.0.1:9", "--timeout", "0.2"],
        }[command]
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = cli_main(argv)
        assert status in (0, 1, 2), (status, err.getvalue())
        if status == 2:
            assert "error:" in err.getvalue()


def fuzz_test(command: str, seed_name: str, examples: int, derandomize: bool):
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=derandomize,
        suppress_health_check=SUPPRESSED,
        database=None,
    )
    @given(data=st.data())
    def test(seeds, data):
        run_reader(command, data.draw(mutated(seeds[seed_name])))

    return test


def _seed_of(command: str) -> str:
    return "failed" if command == "replay" else "alerts"


for _command, _examples in QUICK.items():
    _name = _command.replace("-", "_")
    globals()[f"test_fuzz_{_name}"] = fuzz_test(_command, _seed_of(_command), _examples, True)
    globals()[f"test_soak_fuzz_{_name}"] = pytest.mark.soak(
        fuzz_test(_command, _seed_of(_command), _examples * SOAK_FACTOR, False)
    )


@pytest.mark.kafka
@settings(
    max_examples=3, deadline=None, derandomize=True, suppress_health_check=SUPPRESSED,
    database=None,
)
@given(garbage=st.lists(st.binary(min_size=0, max_size=200), min_size=1, max_size=4))
def test_fuzz_consume_garbage_messages(kafka_broker, seeds, garbage):
    """Garbage messages around a real alert: the alert is written, each bad one kept aside."""
    from confluent_kafka import Producer

    from alertpack.schema import pack_wire

    with seeds_payload(seeds) as payload:
        topic = f"fuzz-{abs(hash(tuple(garbage))) % 10**9}"
        producer = Producer({"bootstrap.servers": kafka_broker.bootstrap})
        for value in [*garbage, pack_wire(1101, payload)]:
            producer.produce(topic, value, partition=0)
        assert producer.flush(10) == 0
        with tempfile.TemporaryDirectory() as folder:
            argv = [
                "consume", "--server", kafka_broker.bootstrap, "--topic", topic,
                "--from-beginning", "--timeout", "1.5", "--out", folder,
            ]
            err = io.StringIO()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
                status = cli_main(argv)
            written = list(Path(folder).glob("*.avro"))
            rejected = [value for path in Path(folder, "rejected").glob("*.avro")
                        for value in _values(path)]
            # an empty or short value may still decode as an alert: count, don't guess
            assert status in (0, 1), err.getvalue()
            assert len(rejected) + sum(_count(p) for p in written) == len(garbage) + 1
            assert (status == 1) == bool(rejected)


def _values(path: Path) -> list[bytes]:
    """The message values kept in a rejected-message file."""
    with path.open("rb") as stream:
        return [record["value"] for record in fastavro.reader(stream)]


@contextlib.contextmanager
def seeds_payload(seeds):
    with io.BytesIO(seeds["failed"]) as stream:
        (record,) = list(fastavro.reader(stream))
    yield record["payload"]


def _count(path: Path) -> int:
    with path.open("rb") as stream:
        return sum(1 for _ in fastavro.reader(stream))

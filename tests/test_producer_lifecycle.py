"""One long-lived Kafka producer per packager/Task, against a real broker (Tansu).

Runs back to back on one producer, a broker restarted between runs, a producer
that fails fatally, and the producer's release (close, finalizer).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import glob
import os
import signal
import threading
import time
from collections import Counter

import pytest

from alertpack import PackageAlertsTask
from alertpack.errors import ConfigError, StreamError
from alertpack.kafka.producer import AlertProducer
from alertpack.kafka.settings import KafkaSettings
from alertpack.sample import make_visit
from alertpack.schema import unpack_wire
from alertpack.sinks.failed import read_failed_alerts
from broker import make_alerts, producing_config, read_topic

pytestmark = pytest.mark.kafka


def settings_for(server: str, topic: str, **values) -> KafkaSettings:
    values = {"flush_timeout": 10.0, "delivery_timeout": 8.0, **values}
    return KafkaSettings.resolve(servers=server, topic=topic, **values)


def source_ids_in_topic(server: str, topic: str, expected: int) -> Counter:
    """diaSourceId (from the payload) -> how many times it is in the topic."""
    from alertpack.schema import load_schema

    schema = load_schema("11.1")
    messages = read_topic(server, topic, expected=expected)
    return Counter(schema.decode(unpack_wire(m.value())[1])["diaSourceId"] for m in messages)


def failed_ids(paths) -> list[int]:
    return [failure.alert.alert_id for path in paths for failure in read_failed_alerts(path)]


# --- one producer for many runs ------------------------------------------------------------


def test_task_runs_back_to_back_on_one_producer_deliver_each_alert_once(kafka_broker, tmp_path):
    visits = [
        make_visit(n_sources=8, image_shape=(300, 300), seed=seed, detector=seed)
        for seed in (1, 2, 3)
    ]
    config = producing_config(
        tmp_path, kafka_broker.bootstrap, "task-back-to-back", doWriteAlerts=False
    )
    with PackageAlertsTask(config=config) as task:
        client = task.packager.producer._client.producer
        results = [task.run(**visit.run_kwargs()) for visit in visits]
        assert task.packager.producer._client.producer is client  # one producer for all runs
    all_ids = [int(i) for result in results for i in result.alerts.alert_ids]
    assert len(set(all_ids)) == len(all_ids) == 24  # three distinct runs
    for result in results:  # each result counts its own run only
        assert (result.nAlerts, result.nDelivered, result.nFailed) == (8, 8, 0)
        assert result.failedPath is None
    assert task.metadata["nDelivered"] == 8
    assert source_ids_in_topic(kafka_broker.bootstrap, "task-back-to-back", 24) == Counter(all_ids)
    with pytest.raises(StreamError, match="closed"):
        task.run(**visits[0].run_kwargs())


def test_threads_sharing_one_producer_get_their_own_results(kafka_broker, tmp_path):
    runs = [make_alerts(15, first_id=start, seed=start) for start in (7000, 8000, 9000)]
    results: dict[int, object] = {}
    settings = settings_for(kafka_broker.bootstrap, "threads")
    with AlertProducer(settings, failed_dir=tmp_path) as producer:

        def send(index: int) -> None:
            results[index] = producer.send(runs[index])

        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(runs))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert {i: (r.delivered, r.failed) for i, r in results.items()} == {
        i: (15, 0) for i in range(3)
    }
    expected = Counter(a.alert_id for run in runs for a in run)
    assert source_ids_in_topic(kafka_broker.bootstrap, "threads", 45) == expected


def delivered_ids(result, alerts) -> list[int]:
    """Ids of ``alerts`` a run delivered: those not in its failed-alerts file."""
    failed = set(failed_ids(result.failed_paths))
    assert len(failed) == result.failed
    return [a.alert_id for a in alerts if a.alert_id not in failed]


def test_broker_down_for_a_run_then_back(fresh_kafka_broker, tmp_path):
    # Tansu keeps its state in memory: restarted, it has forgotten the idempotent
    # producer's id, which librdkafka reports as a fatal UNKNOWN_PRODUCER_ID; the
    # run that meets it spills into its failed file and the next run uses a new producer.
    broker = fresh_kafka_broker
    settings = settings_for(broker.bootstrap, "per-run", flush_timeout=3.0, delivery_timeout=1.5)
    runs = [make_alerts(10, first_id=start) for start in (1000, 2000, 3000, 4000)]
    with AlertProducer(settings, failed_dir=tmp_path) as producer:
        first = producer.send(runs[0])
        broker.stop()
        down = producer.send(runs[1])
        broker.start()  # same port; in-memory topics start empty
        after, later = producer.send(runs[2]), producer.send(runs[3])
    assert (first.delivered, first.failed) == (10, 0)
    assert (down.delivered, down.failed) == (0, 10)
    assert sorted(failed_ids(down.failed_paths)) == [a.alert_id for a in runs[1]]
    assert after.total == 10  # reconnected, or spilled into its own failed file
    assert (later.delivered, later.failed, later.failed_paths) == (10, 0, [])
    expected = delivered_ids(after, runs[2]) + [a.alert_id for a in runs[3]]
    assert source_ids_in_topic(broker.bootstrap, "per-run", len(expected)) == Counter(expected)


def test_broker_restarted_between_task_runs_loses_nothing(fresh_kafka_broker, tmp_path):
    broker = fresh_kafka_broker
    config = producing_config(
        tmp_path, broker.bootstrap, "restart", doWriteAlerts=False,
        kafkaFlushTimeout=8.0, kafkaDeliveryTimeout=6.0,
    )
    visits = [
        make_visit(n_sources=10, image_shape=(300, 300), seed=seed, detector=seed)
        for seed in (4, 5, 6)
    ]
    with PackageAlertsTask(config=config) as task:
        before = task.run(**visits[0].run_kwargs())
        broker.stop()
        broker.start()
        after = task.run(**visits[1].run_kwargs())
        later = task.run(**visits[2].run_kwargs())
    assert (before.nDelivered, before.nFailed) == (10, 0)
    # the run after the restart reconnects or spills; each alert delivered or in its file, once
    assert after.nDelivered + after.nFailed == after.nAlerts == 10
    spilled = failed_ids([after.failedPath] if after.failedPath else [])
    assert len(spilled) == len(set(spilled)) == after.nFailed
    assert (later.nDelivered, later.nFailed) == (10, 0)
    sent_after = [int(i) for i in after.alerts.alert_ids if int(i) not in set(spilled)]
    expected = sent_after + [int(i) for i in later.alerts.alert_ids]
    assert source_ids_in_topic(broker.bootstrap, "restart", len(expected)) == Counter(expected)


# --- a producer that failed fatally ---------------------------------------------------------


def _raise_fatal_error(alert_producer: AlertProducer) -> None:
    """Make librdkafka raise a real fatal error in the producer, with its test-only hook.

    ``rd_kafka_test_fatal_error`` takes the ``rd_kafka_t`` handle, which
    confluent-kafka keeps right after the object header of its Producer; the
    handle is checked (by its client name) before it is used.
    """
    import confluent_kafka

    folder = os.path.join(os.path.dirname(confluent_kafka.__file__), "..", "confluent_kafka.libs")
    found = glob.glob(os.path.join(folder, "librdkafka*"))
    if not found:
        pytest.skip("librdkafka shared library of confluent-kafka not found")
    library = ctypes.CDLL(found[0])
    library.rd_kafka_name.restype = ctypes.c_char_p
    library.rd_kafka_name.argtypes = [ctypes.c_void_p]
    library.rd_kafka_test_fatal_error.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p]
    client = alert_producer._client.producer
    handle = ctypes.c_void_p.from_address(id(client) + object.__basicsize__).value
    if not handle or not library.rd_kafka_name(handle).startswith(b"alertpack#producer"):
        pytest.skip("cannot find the rd_kafka_t handle of this confluent-kafka version")
    out_of_order_sequence = 45  # RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER
    assert library.rd_kafka_test_fatal_error(handle, out_of_order_sequence, b"by the test") == 0


def test_fatally_failed_producer_is_rebuilt_for_the_next_run(kafka_broker, tmp_path):
    settings = settings_for(kafka_broker.bootstrap, "fatal")
    first, second, third = (make_alerts(6, first_id=start) for start in (4000, 5000, 6000))
    with AlertProducer(settings, failed_dir=tmp_path) as producer:
        assert producer.send(first).delivered == 6
        old_client = producer._client.producer
        _raise_fatal_error(producer)
        broken = producer.send(second)
        rebuilt = producer.send(third)
        assert producer._client.producer is not old_client
    assert broken.total == 6  # nothing unaccounted for: delivered before the error or failed
    assert broken.failed >= 1 and all("fatal" in reason.lower() for reason in broken.reasons)
    assert (rebuilt.delivered, rebuilt.failed) == (6, 0)
    expected = [a.alert_id for a in first] + delivered_ids(broken, second)
    expected += [a.alert_id for a in third]
    assert source_ids_in_topic(kafka_broker.bootstrap, "fatal", len(expected)) == Counter(expected)


def test_kafka_settings_errors_fail_at_construction(tmp_path):
    # librdkafka itself refuses this one, when the producer is created with the Task
    config = producing_config(
        tmp_path, "127.0.0.1:9", "t", create=False, doWriteAlerts=False, kafkaUsername="u",
        kafkaPassword="p",
        kafkaSecurityProtocol="SASL_PLAINTEXT", kafkaSaslMechanism="NO-SUCH-MECHANISM",
    )
    with pytest.raises(ConfigError, match="NO-SUCH-MECHANISM"):
        PackageAlertsTask(config=config)
    settings = settings_for("127.0.0.1:9", "t", extra={"no.such.property": 1})
    with pytest.raises(ConfigError, match=r"no\.such\.property"):
        AlertProducer(settings, failed_dir=tmp_path)


# --- release -------------------------------------------------------------------------------


def test_producer_is_released_by_close_and_by_its_finalizer(tmp_path):
    settings = settings_for("127.0.0.1:9", "t")
    producer = AlertProducer(settings, failed_dir=tmp_path)
    client = producer._client
    producer.close()
    producer.close()  # twice is fine
    assert producer.closed and client.producer is None
    forgotten = AlertProducer(settings, failed_dir=tmp_path)
    client = forgotten._client
    del forgotten
    gc.collect()
    assert client.producer is None


# --- interrupts, in process -----------------------------------------------------------------


@contextlib.contextmanager
def signal_after(seconds: float, signum: int):
    """Send ``signum`` to this process's main thread after ``seconds``."""
    timer = threading.Timer(seconds, signal.pthread_kill, (threading.main_thread().ident, signum))
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def test_ctrl_c_during_the_flush_ends_it_and_keeps_every_alert(tmp_path):
    # broker unreachable, flush timeout 60 s: Ctrl-C must end the flush, not wait it out
    settings = settings_for("127.0.0.1:9", "t", flush_timeout=60.0, delivery_timeout=60.0)
    alerts = make_alerts(15)
    with AlertProducer(settings, failed_dir=tmp_path) as producer:
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt), signal_after(0.5, signal.SIGINT):
            producer.send(alerts)
        assert time.monotonic() - started < 3.0
        result = producer.last_result
    assert (result.delivered, result.failed) == (0, 15)
    assert sorted(failed_ids(result.failed_paths)) == [a.alert_id for a in alerts]
    (reason,) = result.reasons
    assert "interrupted by SIGINT" in reason


# --- message timestamps ---------------------------------------------------------------------


def test_observation_timestamps_match_astropy_across_leap_seconds():
    import numpy as np
    from astropy.time import Time

    from alertpack.packets.batch import AlertBatch
    from alertpack.schema import load_schema

    rng = np.random.default_rng(3)
    leap_days = [41317.0, 57204.0, 57754.0]  # 1972-01-01, 2015-07-01, 2017-01-01
    edges = [day + offset / 86400 for day in leap_days for offset in (-40, -1, -0.0004, 0, 1, 37)]
    mjd = np.concatenate([rng.uniform(41317, 61500, 500), edges])
    batch = AlertBatch(
        schema=load_schema("11.1"), payloads=[b""] * mjd.size,
        alert_ids=np.arange(mjd.size), object_ids=np.arange(mjd.size),
        ccd_visit_ids=np.zeros(mjd.size, dtype=np.int64), times_mjd_tai=mjd,
    )
    expected = np.round(Time(mjd, format="mjd", scale="tai").unix * 1000.0).astype(np.int64)
    assert np.array_equal(batch.timestamps_ms(), expected)
    assert batch.timestamps_ms()[:0].dtype == np.int64

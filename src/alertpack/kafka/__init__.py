"""Kafka: deliver alerts to a topic and read them back.

Modules
-------
settings
    `Secret`, the producer's `KafkaSettings` and the `ConsumerSettings`
    (from a config, the ``AP_KAFKA_*`` environment or explicit values), the
    one redaction rule every text leaving this package goes through, and the
    librdkafka logger that masks the secrets of every live client.
producer
    `AlertProducer`: a long-lived idempotent producer, each run ending
    delivered or in a failed-alerts file (`DeliveryResult`).
consumer
    Opening a consumer on every partition of a topic (assigned, or joining a
    group), iterating its messages (until idle, or until a stop event) and
    committing offsets.
registry
    Registering the alert schema with a Confluent schema registry.
replay
    Sending the alerts of failed-alerts files again.
signals
    SIGINT and SIGTERM held back while a failed-alerts file or a consumed
    batch is written, and SIGTERM taken as Ctrl-C by the command line.
local_broker
    `LocalBroker`: the Tansu broker of the ``broker`` extra on 127.0.0.1, for
    first steps (``alertpack broker``).

Importing this package (or any of its modules) has no side effect: no
logger is configured and confluent-kafka is imported only when a client is
created.
"""

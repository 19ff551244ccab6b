"""Where alerts go: Avro files on disk (`files`) and Kafka topics (`kafka`)."""

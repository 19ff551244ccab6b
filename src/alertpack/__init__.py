"""alertpack: package survey detections into Rubin-schema Avro alerts and deliver them."""

__version__ = "0.1.0"

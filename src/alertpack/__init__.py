"""alertpack: package survey detections into Rubin-schema Avro alerts and deliver them."""

"""Packet building: catalogs validated into columns, cutouts, Avro alerts."""

"""The exchange's Avro schemas, shipped as package data (see `exchange.schemas`)."""

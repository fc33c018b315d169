"""Avro single-object encoding (`C3 01`, 8-byte CRC-64-AVRO fingerprint, body) on fastavro.

fastavro has no single-object support; the header is built from the fingerprint of the parsing
canonical form (fastavro's hex string is already in the little-endian order the spec wants).
A reader resolves the writer schema from the fingerprint among every version the exchange ships,
and reads with the current version of the same schema (Avro schema resolution), so old records stay
readable after a backward-compatible change, with no registry server.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from exchange import schemas
from exchange.exceptions import SerializationError

MAGIC = b"\xc3\x01"
HEADER_SIZE = len(MAGIC) + 8

Record = dict[str, Any]


class AvroCodec:
    """Encodes records of the exchange's schemas and decodes them whichever known version wrote them."""

    def __init__(self, versions: list[schemas.SchemaVersion] | None = None) -> None:
        known = versions if versions is not None else schemas.all_versions()
        self._by_fingerprint = {version.fingerprint: version for version in known}

    def encode(self, name: str, record: Record) -> bytes:
        """Single-object encode `record` with the current version of schema `name`."""
        version = schemas.current(name)
        buffer = BytesIO()
        buffer.write(MAGIC)
        buffer.write(version.fingerprint)
        try:
            schemaless_writer(buffer, version.parsed, record)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise SerializationError(f"record does not fit schema {name}: {exc}") from exc
        return buffer.getvalue()

    def writer_of(self, data: bytes) -> schemas.SchemaVersion:
        """The schema version that wrote `data`, from its header."""
        if len(data) < HEADER_SIZE or data[:2] != MAGIC:
            raise SerializationError("not Avro single-object encoded: the C3 01 marker is missing")
        version = self._by_fingerprint.get(data[2:HEADER_SIZE])
        if version is None:
            raise SerializationError(f"unknown schema fingerprint {data[2:HEADER_SIZE].hex()}")
        return version

    def decode(self, data: bytes) -> tuple[str, Record]:
        """The schema name and the record, read with the current version of that schema."""
        writer = self.writer_of(data)
        reader = schemas.current(writer.name)
        body = BytesIO(data[HEADER_SIZE:])
        try:
            record = schemaless_reader(body, writer.parsed, None if writer is reader else reader.parsed)
        # OverflowError: a date or timestamp Python cannot hold (year 10000 on), which fastavro raises.
        except (EOFError, ValueError, TypeError, IndexError, OverflowError) as exc:
            raise SerializationError(f"corrupt {writer.name} record: {exc}") from exc
        left = len(data) - HEADER_SIZE - body.tell()
        if left:  # a record reads to the end of its message: more is corruption, or another writer's body
            raise SerializationError(f"corrupt {writer.name} record: {left} byte(s) after its end")
        if not isinstance(record, dict):
            raise SerializationError(f"{writer.name} record is not a record")
        return writer.name, record

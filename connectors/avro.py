"""Avro single-object encoding for the connectors' hot path: the same bytes as `AvroCodec.encode`, faster.

fastavro's `schemaless_writer` interprets the schema for every record (30-60 µs for a connector's
record, a third of the preparing work). Here each schema is compiled once into a tree of small
writers over the plain types the mappings produce — strings, ints, enums, dates and timestamps,
decimals, `["null", T]` unions — using fastavro's own logical-type conversions, so the bytes are
fastavro's. Anything else is left to fastavro: a schema with a construct not compiled here, and a
record the compiled writer does not take exactly (a missing field, a value of another type, a
number out of range) is encoded by `AvroCodec`, which also raises its `SerializationError`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from fastavro._logical_writers import LOGICAL_WRITERS

from exchange import schemas
from exchange.serialization import MAGIC, AvroCodec

Writer = Callable[[bytearray, Any], None]

_LONG_MIN, _LONG_MAX = -(1 << 63), (1 << 63) - 1
_INT_MIN, _INT_MAX = -(1 << 31), (1 << 31) - 1


class _NotCompiled(Exception):
    """Raised when a schema uses a construct this module leaves to fastavro."""


class _NotTaken(Exception):
    """Raised when a value is not exactly of a type the compiled writer handles."""


def _varint(out: bytearray, n: int) -> None:
    """Append a zig-zag varint of a value already known to fit in 64 bits."""
    n = (n << 1) ^ (n >> 63)
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _write_long(out: bytearray, value: Any) -> None:
    if type(value) is not int or not _LONG_MIN <= value <= _LONG_MAX:
        raise _NotTaken
    _varint(out, value)


def _write_int(out: bytearray, value: Any) -> None:
    if type(value) is not int or not _INT_MIN <= value <= _INT_MAX:
        raise _NotTaken
    _varint(out, value)


def _write_string(out: bytearray, value: Any) -> None:
    if type(value) is not str:
        raise _NotTaken
    data = value.encode()
    _varint(out, len(data))
    out += data


def _write_bytes(out: bytearray, value: Any) -> None:
    if type(value) is not bytes:
        raise _NotTaken
    _varint(out, len(value))
    out += value


def _write_boolean(out: bytearray, value: Any) -> None:
    if type(value) is not bool:
        raise _NotTaken
    out.append(1 if value else 0)


def _write_double(out: bytearray, value: Any) -> None:
    if type(value) is not float:
        raise _NotTaken
    out += struct.pack("<d", value)


def _write_null(out: bytearray, value: Any) -> None:
    if value is not None:
        raise _NotTaken


_PRIMITIVES: dict[str, Writer] = {
    "null": _write_null,
    "boolean": _write_boolean,
    "int": _write_int,
    "long": _write_long,
    "double": _write_double,
    "bytes": _write_bytes,
    "string": _write_string,
}


def _enum(symbols: list[str]) -> Writer:
    indexes = {symbol: index for index, symbol in enumerate(symbols)}

    def write(out: bytearray, value: Any) -> None:
        if type(value) is not str or value not in indexes:
            raise _NotTaken
        _varint(out, indexes[value])

    return write


def _logical(prepare: Callable[[Any, dict[str, Any]], Any], schema: dict[str, Any], plain: Writer) -> Writer:
    def write(out: bytearray, value: Any) -> None:
        plain(out, prepare(value, schema))

    return write


def _nullable(inner: Writer) -> Writer:
    def write(out: bytearray, value: Any) -> None:
        if value is None:
            out.append(0)
        else:
            out.append(2)  # the zig-zag varint of branch 1
            inner(out, value)

    return write


def _record(fields: list[tuple[str, Writer]]) -> Writer:
    def write(out: bytearray, value: Any) -> None:
        if type(value) is not dict:
            raise _NotTaken
        for name, field in fields:
            try:
                item = value[name]
            except KeyError:  # fastavro then writes the field's default, or refuses
                raise _NotTaken from None
            field(out, item)

    return write


def compile_schema(schema: Any, named: dict[str, Any]) -> Writer:
    """A writer of `schema` (fastavro's parsed form; `named` its named types); raise `_NotCompiled`
    for a construct left to fastavro."""
    if isinstance(schema, str):
        if schema in _PRIMITIVES:
            return _PRIMITIVES[schema]
        if schema in named:
            return compile_schema(named[schema], named)
        raise _NotCompiled(schema)
    if isinstance(schema, list):
        if (
            len(schema) == 2
            and schema[0] == "null"
            and schema[1] != "null"
            and not isinstance(schema[1], list)
        ):
            return _nullable(compile_schema(schema[1], named))
        raise _NotCompiled("union")
    if not isinstance(schema, dict):
        raise _NotCompiled(repr(schema))
    kind = schema["type"]
    if kind == "record":
        return _record([(field["name"], compile_schema(field["type"], named)) for field in schema["fields"]])
    if kind == "enum":
        return _enum(list(schema["symbols"]))
    if not isinstance(kind, str) or kind not in _PRIMITIVES:
        raise _NotCompiled(repr(kind))
    plain = _PRIMITIVES[kind]
    logical = schema.get("logicalType")
    prepare = LOGICAL_WRITERS.get(f"{kind}-{logical}") if logical else None
    return plain if prepare is None else _logical(prepare, schema, plain)


class RecordEncoder:
    """Single-object encodes records with the current version of the exchange's schemas, byte for byte
    as `AvroCodec.encode` does, raising its `SerializationError` for a record that does not fit."""

    def __init__(self) -> None:
        self._codec = AvroCodec()
        self._writers: dict[str, tuple[bytes, Writer | None]] = {}

    def compiled(self, name: str) -> bool:
        """Whether records of schema `name` take the compiled path (else fastavro encodes them all)."""
        return self._writer(name)[1] is not None

    def _writer(self, name: str) -> tuple[bytes, Writer | None]:
        try:
            return self._writers[name]
        except KeyError:
            pass
        version = schemas.current(name)
        try:
            writer: Writer | None = compile_schema(version.parsed, version.parsed.get("__named_schemas", {}))
        except (_NotCompiled, RecursionError):
            writer = None
        self._writers[name] = entry = (MAGIC + version.fingerprint, writer)
        return entry

    def encode(self, name: str, record: dict[str, Any]) -> bytes:
        """Single-object encode `record` with the current version of schema `name`."""
        header, writer = self._writer(name)
        if writer is not None:
            out = bytearray(header)
            try:
                writer(out, record)
            except Exception:  # not taken exactly: fastavro decides, refusing with its own error
                pass
            else:
                return bytes(out)
        return self._codec.encode(name, record)

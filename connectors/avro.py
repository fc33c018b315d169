"""Avro single-object encoding for the connectors' hot path: the same bytes as `AvroCodec.encode`, faster.

fastavro's `schemaless_writer` interprets the schema for every record (30-60 µs for a connector's
record, a third of the preparing work). Here each record schema is compiled once into the source of
one Python function writing its fields in order — strings, ints, enums, dates and timestamps,
decimals, `["null", T]` unions, nested records — with fastavro's own logical-type conversions, so
the bytes are fastavro's. Anything else is left to fastavro: a schema with a construct not compiled
here, and a record the compiled writer does not take exactly (a missing field, a value of another
type, a number out of range) is encoded by `AvroCodec`, which also raises its `SerializationError`.
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
# The bounds of Avro's integers, by the names the generated code knows them by.
_LIMITS = {"long": ("_LONG_MIN", "_LONG_MAX"), "int": ("_INT_MIN", "_INT_MAX")}


class _NotCompiled(Exception):
    """Raised when a schema uses a construct this module leaves to fastavro."""


class _NotTaken(Exception):
    """Raised when a value is not exactly of a type the compiled writer handles."""


def _varint(out: bytearray, n: int) -> None:
    """Append a zig-zag varint of a value already known to fit in 64 bits.

    The generated code writes its numbers and lengths with the same loop, inline.
    """
    n = (n << 1) ^ (n >> 63)
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


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


# The primitives the generated code calls a writer for; int, long, string and bytes it writes inline.
_CALLED: dict[str, Writer] = {"null": _write_null, "boolean": _write_boolean, "double": _write_double}
_PRIMITIVES = {"int", "long", "string", "bytes", *_CALLED}


def enum_indexes(symbols: list[str]) -> dict[str, bytes]:
    """Each symbol of an enum with the varint of its index, as written."""
    indexes = {}
    for index, symbol in enumerate(symbols):
        encoded = bytearray()
        _varint(encoded, index)
        indexes[symbol] = bytes(encoded)
    return indexes


def compile_schema(schema: Any, named: dict[str, Any]) -> Writer:
    """A writer of record `schema` (fastavro's parsed form; `named` its named types), generated as
    one function (see `_Generator`); raise `_NotCompiled` for a construct left to fastavro."""
    if isinstance(schema, str) and schema in named:
        schema = named[schema]
    if not isinstance(schema, dict) or schema["type"] != "record":
        raise _NotCompiled(repr(schema))
    generator = _Generator(named)
    generator.emit(0, "def write(out, value):")
    generator.emit(1, "append = out.append")
    generator.value(schema, "value", 1)
    namespace = dict(generator.names)
    exec(compile("\n".join(generator.lines), f"<avro writer of {schema.get('name')}>", "exec"), namespace)
    write: Writer = namespace["write"]
    return write


class _Generator:
    """Writes the source of one function writing a record schema: every field of every nested record
    inline, in order — no call, loop or `try` per field. A value it does not take exactly raises
    (`_NotTaken`, or `KeyError` for a missing field or enum symbol), and `RecordEncoder.encode` then
    leaves the record to fastavro."""

    def __init__(self, named: dict[str, Any]) -> None:
        self.named = named
        self.lines: list[str] = []
        self.names: dict[str, Any] = {
            "_NotTaken": _NotTaken,
            "_varint": _varint,
            "_LONG_MIN": _LONG_MIN,
            "_LONG_MAX": _LONG_MAX,
            "_INT_MIN": _INT_MIN,
            "_INT_MAX": _INT_MAX,
        }
        self._count = 0

    def fresh(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}{self._count}"

    def constant(self, value: Any) -> str:
        name = self.fresh("_c")
        self.names[name] = value
        return name

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)

    def value(self, schema: Any, var: str, depth: int) -> None:
        """Lines writing the value in variable `var` as `schema`."""
        if isinstance(schema, str) and schema in self.named:
            schema = self.named[schema]
        if isinstance(schema, str):
            self.primitive(schema, var, depth)
        elif isinstance(schema, list):
            if len(schema) != 2 or schema[0] != "null" or schema[1] == "null" or isinstance(schema[1], list):
                raise _NotCompiled("union")
            self.emit(depth, f"if {var} is None:")
            self.emit(depth + 1, "append(0)")
            self.emit(depth, "else:")
            self.emit(depth + 1, "append(2)")  # the zig-zag varint of branch 1
            self.value(schema[1], var, depth + 1)
        elif isinstance(schema, dict):
            self.complex(schema, var, depth)
        else:
            raise _NotCompiled(repr(schema))

    def complex(self, schema: dict[str, Any], var: str, depth: int) -> None:
        kind = schema["type"]
        if kind == "record":
            self.emit(depth, f"if type({var}) is not dict:")
            self.emit(depth + 1, "raise _NotTaken")
            for field in schema["fields"]:
                item = self.fresh("v")
                self.emit(depth, f"{item} = {var}[{field['name']!r}]")
                self.value(field["type"], item, depth)
        elif kind == "enum":
            self.emit(depth, f"if type({var}) is not str:")
            self.emit(depth + 1, "raise _NotTaken")
            self.emit(depth, f"out += {self.constant(enum_indexes(list(schema['symbols'])))}[{var}]")
        elif isinstance(kind, str) and kind in _PRIMITIVES:
            logical = schema.get("logicalType")
            prepare = LOGICAL_WRITERS.get(f"{kind}-{logical}") if logical else None
            if prepare is not None:
                prepared = self.fresh("p")
                self.emit(depth, f"{prepared} = {self.constant(prepare)}({var}, {self.constant(schema)})")
                var = prepared
            self.primitive(kind, var, depth)
        else:
            raise _NotCompiled(repr(kind))

    def primitive(self, kind: str, var: str, depth: int) -> None:
        if kind in _LIMITS:
            low, high = _LIMITS[kind]
            self.emit(depth, f"if type({var}) is not int or not {low} <= {var} <= {high}:")
            self.emit(depth + 1, "raise _NotTaken")
            self.varint(f"({var} << 1) ^ ({var} >> 63)", depth)
        elif kind in ("string", "bytes"):
            self.emit(depth, f"if type({var}) is not {'str' if kind == 'string' else 'bytes'}:")
            self.emit(depth + 1, "raise _NotTaken")
            data = self.fresh("d")
            self.emit(depth, f"{data} = {var}.encode()" if kind == "string" else f"{data} = {var}")
            self.varint(f"len({data}) << 1", depth)
            self.emit(depth, f"out += {data}")
        elif kind in _CALLED:
            self.emit(depth, f"{self.constant(_CALLED[kind])}(out, {var})")
        else:
            raise _NotCompiled(kind)

    def varint(self, zigzagged: str, depth: int) -> None:
        """Lines appending the varint of a value already zig-zag encoded: `_varint`, inline."""
        n = self.fresh("n")
        self.emit(depth, f"{n} = {zigzagged}")
        self.emit(depth, f"while {n} > 0x7F:")
        self.emit(depth + 1, f"append(({n} & 0x7F) | 0x80)")
        self.emit(depth + 1, f"{n} >>= 7")
        self.emit(depth, f"append({n})")


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

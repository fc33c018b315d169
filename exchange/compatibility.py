"""`exchange schemas check`: every current schema must read every earlier version kept (backward).

avro's `ReaderWriterCompatibilityChecker` is the reference implementation of Avro schema resolution;
it is used here only, never on the data path (fastavro encodes and decodes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from exchange import schemas
from exchange.exceptions import SchemaError


@dataclass(frozen=True)
class Incompatibility:
    """A current schema that cannot read an earlier version of itself."""

    name: str
    version: str
    messages: tuple[str, ...]


def _avro(version: schemas.SchemaVersion) -> avro.schema.Schema:
    try:
        return avro.schema.parse(json.dumps(version.json))
    except avro.errors.AvroException as exc:
        raise SchemaError(f"{version.name} {version.version} is not a valid Avro schema: {exc}") from exc


def check(reader: schemas.SchemaVersion, writers: tuple[schemas.SchemaVersion, ...]) -> list[Incompatibility]:
    """The earlier versions `reader` cannot read: by Avro's resolution rules, or because a value kept in
    both changed its logical type (decimal precision or scale, date, timestamp unit).

    Avro resolves the underlying types only, so it reads a decimal of scale 2 as one of scale 4 and
    timestamp-millis as micros; and the fingerprint, taken over the parsing canonical form, does not
    tell the two versions apart either. Such a change is not backward compatible here.
    """
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]
    found = []
    for writer in writers:
        result = checker.get_compatibility(_avro(reader), _avro(writer))
        messages = (
            list(result.messages) if result.compatibility is not SchemaCompatibilityType.compatible else []
        )
        messages += _logical_changes(_logical_types(writer.json), _logical_types(reader.json))
        if messages:
            found.append(Incompatibility(reader.name, writer.version, tuple(messages)))
    return found


_Logical = tuple[str, Any, Any, Any]  # underlying type, logicalType, precision, scale


def _logical_types(node: Any, path: str = "") -> dict[str, _Logical]:
    """Every primitive value of a schema by its path (fields by name, union branches by type), with its
    underlying type and logical type."""
    found: dict[str, _Logical] = {}
    if isinstance(node, list):
        for branch in node:
            kind = branch.get("name", branch.get("type")) if isinstance(branch, dict) else branch
            found.update(_logical_types(branch, f"{path}|{kind}"))
    elif isinstance(node, dict):
        kind = node.get("type")
        if kind == "record":
            for field in node.get("fields", []):
                found.update(_logical_types(field["type"], f"{path}.{field['name']}"))
        elif kind == "array":
            found.update(_logical_types(node["items"], f"{path}[]"))
        elif kind == "map":
            found.update(_logical_types(node["values"], f"{path}{{}}"))
        elif isinstance(kind, str) and kind not in ("enum", "fixed"):
            found[path] = (kind, node.get("logicalType"), node.get("precision"), node.get("scale"))
        elif isinstance(kind, dict | list):
            found.update(_logical_types(kind, path))
    elif isinstance(node, str):
        found[path] = (node, None, None, None)
    return found


def _logical_changes(written: dict[str, _Logical], read: dict[str, _Logical]) -> list[str]:
    return [
        f"{path.lstrip('.')}: written as {_shown(written[path])}, read as {_shown(read[path])}"
        for path in sorted(written.keys() & read.keys())
        if written[path][1:] != read[path][1:]
    ]


def _shown(logical: _Logical) -> str:
    kind, name, precision, scale = logical
    if name is None:
        return kind
    return f"{kind} {name}" + ("" if precision is None else f"({precision},{scale or 0})")


def check_all() -> list[Incompatibility]:
    """Check every record schema of the exchange against its history."""
    return [
        problem
        for name in schemas.RECORD_SCHEMAS
        for problem in check(schemas.current(name), schemas.history(name))
    ]

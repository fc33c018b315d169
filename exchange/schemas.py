"""The schema set: loads `schemas/*.avsc` (package data), inlines shared named types, and knows every version.

A dataset schema refers to `gov.exchange.Envelope` by name; `load` inlines the envelope so that each
schema is self-contained, which is what the parsing canonical form and its fingerprint need.
Earlier versions are kept as self-contained files under `schemas/history/<name>/v<N>.avsc`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

from exchange.exceptions import SchemaError

JsonSchema = dict[str, Any]

ENVELOPE = "envelope"
# The schemas records are written with; "envelope" is only ever part of another schema.
RECORD_SCHEMAS: tuple[str, ...] = (
    "identity.person",
    "tax.payment",
    "social.contribution",
    "property.title",
    "deadletter",
    "profile",
    "ledger",
    "application",
    "decision",
    "audit",
    "consent",
)


@dataclass(frozen=True)
class SchemaVersion:
    """One version of one schema: its JSON, the parsed form fastavro needs, and its fingerprint."""

    name: str
    version: str
    json: JsonSchema
    parsed: Any
    canonical: str
    fingerprint: bytes


def _read_json(*parts: str) -> JsonSchema:
    node = resources.files("schemas").joinpath(*parts)
    try:
        loaded: JsonSchema = json.loads(node.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SchemaError(f"cannot read schema {'/'.join(parts)}: {exc}") from exc
    return loaded


def _inline(node: Any, named: dict[str, JsonSchema], seen: set[str]) -> Any:
    """Replace the first reference to each shared named type by its definition."""
    if isinstance(node, str) and node in named and node not in seen:
        seen.add(node)
        return _inline(named[node], named, seen)
    if isinstance(node, list):
        return [_inline(item, named, seen) for item in node]
    if isinstance(node, dict):
        return {
            key: _inline(value, named, seen) if key in ("type", "items", "values", "fields") else value
            for key, value in node.items()
        }
    return node


def _fullname(schema: JsonSchema) -> str:
    name = str(schema["name"])
    return name if "." in name else f"{schema.get('namespace', '')}.{name}".lstrip(".")


@cache
def load(name: str) -> JsonSchema:
    """The current version of a schema as self-contained JSON."""
    envelope = _read_json(f"{ENVELOPE}.avsc")
    raw = _read_json(f"{name}.avsc")
    if name == ENVELOPE:
        return raw
    return dict(_inline(raw, {_fullname(envelope): envelope}, set()))


def _version(name: str, version: str, schema: JsonSchema) -> SchemaVersion:
    try:
        parsed = parse_schema(schema, named_schemas={})
    except Exception as exc:  # fastavro raises several unrelated types for a bad schema
        raise SchemaError(f"schema {name} {version} does not parse: {exc}") from exc
    canonical = to_parsing_canonical_form(parsed)
    return SchemaVersion(
        name=name,
        version=version,
        json=schema,
        parsed=parsed,
        canonical=canonical,
        fingerprint=bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")),
    )


@cache
def current(name: str) -> SchemaVersion:
    """The version records are written with today."""
    return _version(name, "current", load(name))


@cache
def history(name: str) -> tuple[SchemaVersion, ...]:
    """Earlier versions of a schema, oldest first; the current one must read all of them."""
    folder = resources.files("schemas").joinpath("history", name)
    if not folder.is_dir():
        return ()
    files = sorted(
        (entry.name for entry in folder.iterdir() if entry.name.endswith(".avsc")),
        key=lambda file: int(file.removeprefix("v").removesuffix(".avsc")),
    )
    return tuple(
        _version(name, file.removesuffix(".avsc"), _read_json("history", name, file)) for file in files
    )


def all_versions() -> list[SchemaVersion]:
    """Every version of every record schema, for resolving a writer schema from its fingerprint."""
    return [version for name in RECORD_SCHEMAS for version in (*history(name), current(name))]


def documents() -> dict[str, dict[str, object]]:
    """Every version of every record schema for outside readers, keyed by its fingerprint in hex (the 8
    bytes after `C3 01` in a record): its name, version (`vN` as frozen under schemas/history, `current`
    for a change not frozen yet) and the schema, self-contained."""
    found: dict[str, dict[str, object]] = {}
    for version in all_versions():  # oldest first: the frozen name wins over `current` for one schema
        found.setdefault(
            version.fingerprint.hex(),
            {"name": version.name, "version": version.version, "schema": version.json},
        )
    return found

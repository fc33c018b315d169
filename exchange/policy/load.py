"""Loading the policy files: parse, check every cross-reference, and hash them into a policy version.

The files live in `policy/` under version control (bundled as package data) or in the folder
`settings.api.policy_dir` names. A malformed file or a dangling reference (a grant for an unknown
caller, fact, proof type or service item) is a `ConfigurationError` naming the file and entry.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Mapping
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any

from exchange.exceptions import ConfigurationError
from exchange.facts import FACT_NAMES
from exchange.policy.model import Caller, Department, Grant, Policy, ProofType
from exchange.profile import DATASETS
from exchange.rules import load_service_items

FILES: tuple[str, ...] = ("callers.json", "grants.json", "proof_types.json", "service_items.json")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_GRANT_KEYS = frozenset(
    {"purpose", "legal_basis", "consent_required", "facts", "profile_fields", "proof_types"}
    | {"service_items", "subject_audit"}
)


def _text(node: Any, where: str) -> tuple[str, str]:
    if not isinstance(node, Mapping) or not all(
        isinstance(node.get(k), str) and node[k] for k in ("zh", "en")
    ):
        raise ConfigurationError(f'{where}: expected {{"zh": …, "en": …}} with both texts non-empty')
    return node["zh"], node["en"]


def _string(node: Any, where: str) -> str:
    if not isinstance(node, str) or not node:
        raise ConfigurationError(f"{where}: expected a non-empty string")
    return node


def _names(node: Any, known: Mapping[str, Any] | frozenset[str], where: str) -> frozenset[str]:
    if node is None:
        return frozenset()
    if not isinstance(node, list) or not all(isinstance(item, str) for item in node):
        raise ConfigurationError(f"{where}: expected a list of names")
    unknown = sorted(set(node) - set(known))
    if unknown:
        raise ConfigurationError(f"{where}: unknown {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return frozenset(node)


def _caller(code: str, node: Any) -> Caller:
    where = f"callers.json: callers.{code}"
    if not isinstance(node, Mapping):
        raise ConfigurationError(f"{where}: expected an object")
    key_hash = node.get("api_key_sha256")
    if not isinstance(key_hash, str) or not _SHA256.fullmatch(key_hash):
        raise ConfigurationError(
            f"{where}.api_key_sha256: expected the lower-case hex SHA-256 of the API key (never the key)"
        )
    tls = node.get("tls_subject")
    zh, en = _text(node.get("name"), f"{where}.name")
    return Caller(code, zh, en, key_hash, None if tls is None else _string(tls, f"{where}.tls_subject"))


def _grant(caller: str, index: int, node: Any, policy: dict[str, Any]) -> Grant:
    where = f"grants.json: grants.{caller}[{index}]"
    if not isinstance(node, Mapping):
        raise ConfigurationError(f"{where}: expected an object")
    extra = sorted(set(node) - _GRANT_KEYS)
    if extra:
        raise ConfigurationError(
            f"{where}: unknown keys {', '.join(extra)}; expected {', '.join(sorted(_GRANT_KEYS))}"
        )
    flags = {key: node.get(key, False) for key in ("consent_required", "subject_audit")}
    for key, value in flags.items():
        if not isinstance(value, bool):
            raise ConfigurationError(f"{where}.{key}: expected true or false")
    return Grant(
        caller=caller,
        purpose=_string(node.get("purpose"), f"{where}.purpose"),
        legal_basis=_string(node.get("legal_basis"), f"{where}.legal_basis"),
        consent_required=flags["consent_required"],
        facts=_names(node.get("facts"), FACT_NAMES, f"{where}.facts"),
        profile_fields=_names(node.get("profile_fields"), FACT_NAMES, f"{where}.profile_fields"),
        proof_types=_names(node.get("proof_types"), policy["proof_types"], f"{where}.proof_types"),
        service_items=_names(node.get("service_items"), policy["service_items"], f"{where}.service_items"),
        subject_audit=flags["subject_audit"],
    )


def _proof_type(code: str, node: Any) -> ProofType:
    where = f"proof_types.json: proof_types.{code}"
    if not isinstance(node, Mapping):
        raise ConfigurationError(f"{where}: expected an object")
    department = node.get("issuing_department")
    if not isinstance(department, Mapping):
        raise ConfigurationError(f"{where}.issuing_department: expected an object with code, zh, en")
    datasets = _names(node.get("datasets"), frozenset(DATASETS), f"{where}.datasets")
    if not isinstance(node.get("period"), bool):
        raise ConfigurationError(f"{where}.period: expected true or false")
    zh, en = _text(node.get("name"), f"{where}.name")
    department_zh, department_en = _text(department, f"{where}.issuing_department")
    return ProofType(
        code=code,
        name_zh=zh,
        name_en=en,
        legal_basis=_string(node.get("legal_basis"), f"{where}.legal_basis"),
        issuing_department=Department(
            _string(department.get("code"), f"{where}.issuing_department.code"), department_zh, department_en
        ),
        datasets=tuple(sorted(datasets)),
        data_used=_string(node.get("data_used"), f"{where}.data_used"),
        period=node["period"],
    )


def _section(document: Any, key: str, file: str) -> Mapping[str, Any]:
    section = document.get(key) if isinstance(document, Mapping) else None
    if not isinstance(section, Mapping):
        raise ConfigurationError(f'{file}: expected an object "{key}"')
    return section


def parse(documents: Mapping[str, Any], version: str, files: Mapping[str, bytes] | None = None) -> Policy:
    """The policy of the parsed files (file name → JSON), cross-checked; `files`, their bytes."""
    callers = {
        code: _caller(code, node)
        for code, node in _section(documents["callers.json"], "callers", "callers.json").items()
    }
    _each_its_own(callers.values())
    proof_types = {
        code: _proof_type(code, node)
        for code, node in _section(documents["proof_types.json"], "proof_types", "proof_types.json").items()
    }
    service_items = load_service_items(documents["service_items.json"])
    known = {"proof_types": proof_types, "service_items": service_items}
    grants: dict[str, dict[str, Grant]] = {}
    for caller, nodes in _section(documents["grants.json"], "grants", "grants.json").items():
        if caller not in callers:
            raise ConfigurationError(f"grants.json: grants.{caller}: no such caller in callers.json")
        if not isinstance(nodes, list):
            raise ConfigurationError(f"grants.json: grants.{caller}: expected a list of grants")
        mine: dict[str, Grant] = {}
        for index, node in enumerate(nodes):
            grant = _grant(caller, index, node, known)
            if grant.purpose in mine:
                raise ConfigurationError(
                    f"grants.json: grants.{caller}: purpose {grant.purpose} is granted twice"
                )
            mine[grant.purpose] = grant
        grants[caller] = mine
    return Policy(version, callers, grants, proof_types, service_items, dict(files or {}))


def _each_its_own(callers: Collection[Caller]) -> None:
    """Refuse two callers with the same API key hash or certificate subject: either would identify one of
    them only, and its requests would be answered, and audited, as the other's."""
    for what in ("api_key_sha256", "tls_subject"):
        seen: dict[str, str] = {}
        for caller in callers:
            value = getattr(caller, what)
            if value is None:
                continue
            if value in seen:
                raise ConfigurationError(
                    f"callers.json: callers.{seen[value]} and callers.{caller.code} have the same {what}: "
                    "each caller needs its own"
                )
            seen[value] = caller.code


def policy_version(files: Mapping[str, bytes]) -> str:
    """The version of the policy files (name → bytes, `FILES` all there): a SHA-256 over each file's
    name, length and bytes, in `FILES` order."""
    digest = hashlib.sha256()
    for name in FILES:
        raw = files[name]
        # Name and length first, so moving bytes from one file to another changes the version.
        digest.update(f"{name}\0{len(raw)}\0".encode())
        digest.update(raw)
    return digest.hexdigest()


def _read(folder: Traversable) -> tuple[dict[str, Any], dict[str, bytes]]:
    documents: dict[str, Any] = {}
    files: dict[str, bytes] = {}
    for name in FILES:
        try:
            files[name] = folder.joinpath(name).read_bytes()
            files[name].decode("utf-8")  # kept as text in `policy_versions`
            documents[name] = json.loads(files[name])
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read policy file {name}: {exc}") from exc
    return documents, files


def load_policy(folder: Path | None = None) -> Policy:
    """The policy in `folder`, or the bundled `policy/` files when None."""
    source: Traversable = resources.files("policy") if folder is None else folder
    documents, files = _read(source)
    return parse(documents, policy_version(files), files)

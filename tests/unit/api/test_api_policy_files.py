"""Loading the policy files: cross-checks, the version hash, and keys stored only as hashes."""

from __future__ import annotations

import hashlib
import json
import shutil
from importlib import resources
from pathlib import Path

import pytest

from exchange.exceptions import ConfigurationError
from exchange.policy import load_policy, policy_version
from exchange.policy.load import FILES

DEV_KEYS = {
    "housing-bureau": "dev-housing-key",
    "talent-office": "dev-talent-key",
    "civil-affairs": "dev-civil-affairs-key",
    "citizen-portal": "dev-portal-key",
    "bank": "dev-bank-key",
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name in FILES:
        source = resources.files("policy").joinpath(name)
        (tmp_path / name).write_bytes(source.read_bytes())
    return tmp_path


def _edit(folder: Path, name: str, change: object) -> None:
    document = json.loads((folder / name).read_text(encoding="utf-8"))
    change(document)  # type: ignore[operator]
    (folder / name).write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")


def test_the_documented_development_keys_authenticate_their_callers() -> None:
    policy = load_policy()
    for code, key in DEV_KEYS.items():
        caller = policy.caller_by_key_hash(hashlib.sha256(key.encode()).hexdigest())
        assert caller is not None and caller.code == code
    assert policy.caller_by_key_hash(hashlib.sha256(b"guess").hexdigest()) is None


def test_certificate_subjects_identify_their_callers() -> None:
    policy = load_policy()
    for code, caller in policy.callers.items():
        if caller.tls_subject is not None:
            found = policy.caller_by_tls_subject(caller.tls_subject)
            assert found is not None and found.code == code
    assert policy.caller_by_tls_subject("CN=nobody") is None


def test_no_policy_file_holds_a_plaintext_key() -> None:
    for name in FILES:
        text = resources.files("policy").joinpath(name).read_text(encoding="utf-8")
        assert not any(key in text for key in DEV_KEYS.values())


def test_the_version_is_a_hash_of_the_files_and_changes_with_them(folder: Path) -> None:
    before = load_policy(folder).version
    assert before == load_policy().version and len(before) == 64
    _edit(folder, "grants.json", lambda d: d["grants"]["bank"].append({"purpose": "x", "legal_basis": "y"}))
    assert load_policy(folder).version != before


def test_the_policy_keeps_its_files_bytes_which_hash_to_its_version(folder: Path) -> None:
    (folder / "callers.json").write_bytes(b"\xef\xbb\xbf" + (folder / "callers.json").read_bytes())  # a BOM
    policy = load_policy(folder)
    assert policy.files == {name: (folder / name).read_bytes() for name in FILES}
    assert policy_version(policy.files) == policy.version
    with pytest.raises(KeyError):
        policy_version({name: raw for name, raw in policy.files.items() if name != "grants.json"})


def test_a_policy_file_not_in_utf8_is_refused(folder: Path) -> None:
    (folder / "grants.json").write_bytes(
        (folder / "grants.json").read_text(encoding="utf-8").encode("utf-16")
    )
    with pytest.raises(ConfigurationError, match=r"grants\.json"):
        load_policy(folder)


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        ("grants.json", lambda d: d["grants"].update({"nobody": []}), "no such caller"),
        (
            "grants.json",
            lambda d: d["grants"]["bank"].append({"purpose": "p", "legal_basis": "l", "facts": ["x.y"]}),
            "unknown x.y",
        ),
        (
            "grants.json",
            lambda d: d["grants"]["bank"].append(
                {"purpose": "p", "legal_basis": "l", "proof_types": ["nope"]}
            ),
            "unknown nope",
        ),
        ("grants.json", lambda d: d["grants"]["bank"].append({"purpose": "p"}), "legal_basis"),
        (
            "grants.json",
            lambda d: d["grants"]["bank"].extend([{"purpose": "p", "legal_basis": "l"}] * 2),
            "granted twice",
        ),
        (
            "grants.json",
            lambda d: d["grants"]["bank"].append({"purpose": "p", "legal_basis": "l", "fact": []}),
            "unknown keys",
        ),
        (
            "callers.json",
            lambda d: d["callers"]["bank"].update({"api_key_sha256": "dev-bank-key"}),
            "SHA-256",
        ),
        (
            "proof_types.json",
            lambda d: d["proof_types"]["household"].update({"datasets": ["x"]}),
            "unknown x",
        ),
        (
            "callers.json",
            lambda d: d["callers"]["bank"].update(
                {"api_key_sha256": d["callers"]["housing-bureau"]["api_key_sha256"]}
            ),
            "callers.housing-bureau and callers.bank have the same api_key_sha256",
        ),
        (
            "callers.json",
            lambda d: d["callers"]["bank"].update(
                {"tls_subject": d["callers"]["housing-bureau"]["tls_subject"]}
            ),
            "callers.housing-bureau and callers.bank have the same tls_subject",
        ),
    ],
)
def test_a_malformed_policy_is_refused_naming_the_entry(
    folder: Path, name: str, change: object, message: str
) -> None:
    _edit(folder, name, change)
    with pytest.raises(ConfigurationError, match=message):
        load_policy(folder)


def test_a_missing_file_is_refused(folder: Path) -> None:
    (folder / "callers.json").unlink()
    with pytest.raises(ConfigurationError, match=r"callers\.json"):
        load_policy(folder)
    shutil.rmtree(folder)

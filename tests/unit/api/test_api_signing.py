"""Proof signatures: Ed25519 JWS sign and verify; a tampered payload, another key or garbage fails."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from exchange.api.signing import ALGORITHM, SignatureInvalidError, load_signer
from exchange.exceptions import ConfigurationError
from exchange.settings import ApiSettings

DOCUMENT = {"proof_id": "7c0e", "content": {"tax_paid": "656.91", "name": "何䶮"}}


def signer_at(path: Path):  # type: ignore[no-untyped-def]
    return load_signer(ApiSettings(signing_key_path=path))


def test_a_signed_proof_verifies_and_names_its_key(tmp_path: Path) -> None:
    signer = signer_at(tmp_path / "key.pem")
    token, payload = signer.sign(DOCUMENT)
    document, verified = signer.verify(token)
    assert document == DOCUMENT and verified == payload
    jwk = signer.jwks()["keys"][0]
    assert jwk["kid"] == signer.kid and jwk["alg"] == ALGORITHM and "d" not in jwk


def test_a_tampered_payload_fails(tmp_path: Path) -> None:
    signer = signer_at(tmp_path / "key.pem")
    header, _payload, signature = signer.sign(DOCUMENT)[0].split(".")
    forged = base64.urlsafe_b64encode(b'{"proof_id":"7c0e","content":{"tax_paid":"9999.00"}}').rstrip(b"=")
    with pytest.raises(SignatureInvalidError):
        signer.verify(f"{header}.{forged.decode()}.{signature}")
    with pytest.raises(SignatureInvalidError):
        signer.verify("not a jws")


def test_another_key_does_not_verify(tmp_path: Path) -> None:
    token, _ = signer_at(tmp_path / "one.pem").sign(DOCUMENT)
    with pytest.raises(SignatureInvalidError):
        signer_at(tmp_path / "two.pem").verify(token)


def test_the_key_is_generated_once_private_to_its_owner_and_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "api" / "key.pem"
    first = signer_at(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert signer_at(path).kid == first.kid
    pem = SecretStr(path.read_text())
    assert (
        load_signer(ApiSettings(signing_key=pem, signing_key_path=tmp_path / "unused.pem")).kid == first.kid
    )
    assert not (tmp_path / "unused.pem").exists()


def test_a_bad_key_is_a_configuration_error_that_does_not_show_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_signer(ApiSettings(signing_key=SecretStr("secret-not-a-pem"), signing_key_path=tmp_path / "k"))
    assert "secret-not-a-pem" not in str(caught.value)

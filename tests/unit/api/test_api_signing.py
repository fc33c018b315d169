"""Proof signatures: Ed25519 JWS sign and verify; a tampered payload, another key or garbage fails."""

from __future__ import annotations

import base64
import os
import threading
from pathlib import Path

import pytest
from joserfc import jws
from joserfc.jwk import OKPKey
from joserfc.jws import JWSRegistry
from pydantic import SecretStr

from exchange.api.signing import (
    ALGORITHM,
    MAX_TOKEN_BYTES,
    ProofTooLargeError,
    SignatureInvalidError,
    _generate,
    load_signer,
    rotate_key,
)
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


def test_a_proof_signed_before_a_key_rotation_still_verifies(tmp_path: Path) -> None:
    # With one key only, every proof issued before a key change read as forged.
    settings = ApiSettings(signing_key_path=tmp_path / "key.pem", retired_keys_path=tmp_path / "old.json")
    first = load_signer(settings)
    token, payload = first.sign(DOCUMENT)
    retired, new = rotate_key(settings)
    assert retired == first.kid and new != first.kid
    assert rotate_key(settings)[0] == new  # a second rotation retires the second key, keeping the first
    signer = load_signer(settings)
    assert signer.verify(token) == (DOCUMENT, payload)
    assert [key["kid"] for key in signer.jwks()["keys"]] == [signer.kid, new, first.kid]
    assert all("d" not in key for key in signer.jwks()["keys"])
    # A key not among them: named as unknown, not checked against another.
    stranger, _ = signer_at(tmp_path / "stranger.pem").sign(DOCUMENT)
    with pytest.raises(SignatureInvalidError, match="names no key of this exchange"):
        signer.verify(stranger)


def test_a_key_file_others_can_read_is_warned_of(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "key.pem"
    signer_at(path)
    assert "readable by others" not in caplog.text  # as generated: its owner's only
    path.chmod(0o644)
    signer_at(path)
    assert f"{path} is readable by others than its owner (mode 644)" in caplog.text


def test_a_key_given_as_a_setting_is_rotated_where_it_is_kept(tmp_path: Path) -> None:
    pem = OKPKey.generate_key("Ed25519").as_pem(private=True).decode()
    with pytest.raises(ConfigurationError, match="EXCHANGE_API__SIGNING_KEY"):
        rotate_key(ApiSettings(signing_key=SecretStr(pem), retired_keys_path=tmp_path / "old.json"))


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


def _lineage(lines: int) -> dict[str, object]:
    """A proof document with `lines` lineage entries of a contribution line's size (about 190 bytes)."""
    ref = {"event_id": "0" * 36, "topic": "exchange.social.contribution.v1", "partition": 11, "offset": 0}
    return {**DOCUMENT, "lineage": [{**ref, "offset": n, "source_id": f"JF{n:016d}"} for n in range(lines)]}


def test_a_proof_over_a_long_career_verifies(tmp_path: Path) -> None:
    # 35 years of five insurance types: about 0.4 MB, over joserfc's default limit (128,000 bytes).
    signer = signer_at(tmp_path / "key.pem")
    document = _lineage(35 * 12 * 5)
    token, payload = signer.sign(document)
    assert len(token) > 128_000
    assert signer.verify(token) == (document, payload)


def test_a_proof_that_would_not_verify_is_not_issued(tmp_path: Path) -> None:
    signer = signer_at(tmp_path / "key.pem")
    # Just under the limit, it is issued and verifies (its payload segment alone was over what verify took).
    token, payload = signer.sign({"pad": "a" * 749_200})
    assert 998_464 < len(token) <= MAX_TOKEN_BYTES
    assert signer.verify(token)[1] == payload
    with pytest.raises(ProofTooLargeError, match="bytes, over"):
        signer.sign(_lineage(MAX_TOKEN_BYTES // 100))
    # A token over the limit, signed with the very key (as another signer of it could), is refused
    # for its size before anything of it is decoded.
    key = OKPKey.import_key((tmp_path / "key.pem").read_bytes())
    roomy = JWSRegistry(algorithms=[ALGORITHM])
    roomy.max_payload_length = 4 * MAX_TOKEN_BYTES
    header = {"alg": ALGORITHM, "kid": signer.kid}
    over = jws.serialize_compact(header, b'{"pad":"' + b"a" * MAX_TOKEN_BYTES + b'"}', key, registry=roomy)
    with pytest.raises(SignatureInvalidError, match="exceeds"):
        signer.verify(over)


def _generated_at_once(path: Path, starters: int = 6) -> list[bytes]:
    """The keys `starters` threads get from `_generate(path)`, started together."""
    barrier = threading.Barrier(starters)
    keys: list[bytes] = []

    def start() -> None:
        barrier.wait()
        keys.append(_generate(path))

    threads = [threading.Thread(target=start) for _ in range(starters)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return keys


def test_processes_generating_the_key_at_once_all_get_the_one_written(tmp_path: Path) -> None:
    # Written in place, a key could be read by another starter before it was complete (empty).
    for trial in range(20):
        path = tmp_path / f"key-{trial}.pem"
        keys = _generated_at_once(path)
        assert len(set(keys)) == 1 and keys[0] == path.read_bytes() and keys[0].startswith(b"-----BEGIN")
        assert sorted(os.listdir(tmp_path)) == sorted(f"key-{n}.pem" for n in range(trial + 1))

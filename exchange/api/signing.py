"""Signing proofs: an Ed25519 key, JWS compact serialisation (joserfc), and the public JWKS.

The algorithm is EdDSA over Ed25519, named by its fully-specified JOSE identifier "Ed25519"
(RFC 9864, which deprecates the polymorphic "EdDSA"). The key is generated on first start into a
file readable by its owner only, or given as a PEM through settings (a SecretStr, never logged).
The payload is the proof document as canonical JSON (sorted keys, UTF-8), so its SHA-256 is stable.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from exchange.exceptions import ConfigurationError, ExchangeError
from exchange.settings import ApiSettings

ALGORITHM = "Ed25519"


class SignatureInvalidError(ExchangeError):
    """Raised when a presented JWS is malformed, not ours, or its signature does not verify."""


def canonical_payload(document: Mapping[str, Any]) -> bytes:
    """The bytes a proof document is signed as."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def payload_sha256(payload: bytes) -> str:
    """Hex SHA-256 of a payload: what the proofs table keeps to check integrity."""
    return hashlib.sha256(payload).hexdigest()


class Signer:
    """Signs and verifies proofs with one Ed25519 key; `kid` is the key's JWK thumbprint (RFC 7638)."""

    def __init__(self, key: OKPKey) -> None:
        if key.curve_name != "Ed25519" or not key.is_private:
            raise ConfigurationError("the proof signing key must be an Ed25519 private key")
        self._key = key
        self._public = OKPKey.import_key(key.as_dict(private=False))
        self.kid = key.thumbprint()

    def sign(self, document: Mapping[str, Any]) -> tuple[str, bytes]:
        """The compact JWS of `document`, and the payload bytes it signs."""
        payload = canonical_payload(document)
        header = {"alg": ALGORITHM, "kid": self.kid, "typ": "proof+jws", "cty": "json"}
        return jws.serialize_compact(header, payload, self._key, algorithms=[ALGORITHM]), payload

    def verify(self, token: str) -> tuple[dict[str, Any], bytes]:
        """The document and payload bytes of a JWS this key signed; `SignatureInvalidError` otherwise."""
        try:
            signed = jws.deserialize_compact(token.strip(), self._public, algorithms=[ALGORITHM])
            document = json.loads(signed.payload)
        except (JoseError, ValueError, TypeError) as exc:
            raise SignatureInvalidError(f"the proof's signature does not verify: {exc}") from exc
        if signed.headers().get("kid") != self.kid or not isinstance(document, dict):
            raise SignatureInvalidError("the proof was not signed with this exchange's key")
        return document, signed.payload

    def jwks(self) -> dict[str, Any]:
        """The public key set, for anyone to verify proofs offline."""
        public = {**self._public.as_dict(private=False), "kid": self.kid, "use": "sig", "alg": ALGORITHM}
        return {"keys": [public]}


def _generate(path: Path) -> bytes:
    pem = OKPKey.generate_key("Ed25519").as_pem(private=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: two processes starting at once never overwrite each other's key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as file:
        file.write(pem)
    return pem


def load_signer(settings: ApiSettings) -> Signer:
    """The signer of the configured key: the PEM setting, else the key file (generated on first start)."""
    try:
        if settings.signing_key is not None:
            pem = settings.signing_key.get_secret_value().encode()
        elif settings.signing_key_path.exists():
            pem = settings.signing_key_path.read_bytes()
        else:
            pem = _generate(settings.signing_key_path)
        key = OKPKey.import_key(pem)
    except (OSError, ValueError, JoseError) as exc:
        # The message names the file, never the key.
        raise ConfigurationError(
            f"cannot load the proof signing key ({settings.signing_key_path}): {type(exc).__name__}"
        ) from exc
    return Signer(key)

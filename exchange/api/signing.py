"""Signing proofs: an Ed25519 key, JWS compact serialisation (joserfc), and the public JWKS.

The algorithm is EdDSA over Ed25519, named by its fully-specified JOSE identifier "Ed25519"
(RFC 9864, which deprecates the polymorphic "EdDSA"). The key is generated on first start into a
file readable by its owner only, or given as a PEM through settings (a SecretStr, never logged).
The payload is the proof document as canonical JSON (sorted keys, UTF-8), so its SHA-256 is stable.

joserfc refuses a compact JWS longer than its registry's limits (a 128,000-byte payload by default),
and a social insurance proof over a long career is longer: about 190 bytes of lineage a contribution
line, so eight years of five insurance types. Proofs are signed and verified under one registry whose
limit, `MAX_TOKEN_BYTES` (1 MB), is above any real proof (35 years of five types is about 0.4 MB), and a
proof that would be longer is not issued: every token signed here verifies here.

A proof names its key (`kid`, the JWK thumbprint) and is verified with that key: the current one, or a
retired one whose public key is kept (`retired_keys_path`, added to by `rotate_key`), so that a proof
issued before a key change is still the exchange's own, and not reported as forged.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import stat
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey
from joserfc.jws import JWSRegistry

from exchange.exceptions import ConfigurationError, ExchangeError
from exchange.settings import ApiSettings

_log = logging.getLogger("exchange.api")
ALGORITHM = "Ed25519"
MAX_TOKEN_BYTES = 1_000_000  # the most /v1/proofs/verify accepts, too


def _registry() -> JWSRegistry:
    registry = JWSRegistry(algorithms=[ALGORITHM])
    # joserfc checks the payload segment against this, and the whole token against it plus the header's
    # and the signature's limits: a token `sign` lets through (at most MAX_TOKEN_BYTES, its header and
    # signature well under their limits) passes both.
    registry.max_payload_length = MAX_TOKEN_BYTES
    return registry


class ProofTooLargeError(ExchangeError):
    """Raised when a proof document would sign to a token longer than `MAX_TOKEN_BYTES`."""


class SignatureInvalidError(ExchangeError):
    """Raised when a presented JWS is malformed, not ours, or its signature does not verify."""


def canonical_payload(document: Mapping[str, Any]) -> bytes:
    """The bytes a proof document is signed as."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def payload_sha256(payload: bytes) -> str:
    """Hex SHA-256 of a payload: what the proofs table keeps to check integrity."""
    return hashlib.sha256(payload).hexdigest()


def public_jwk(key: OKPKey) -> dict[str, Any]:
    """The public JWK of an Ed25519 key, as /v1/keys publishes it."""
    return {**key.as_dict(private=False), "kid": key.thumbprint(), "use": "sig", "alg": ALGORITHM}


class Signer:
    """Signs proofs with one Ed25519 key and verifies them with it or a retired key; `kid` is the key's
    JWK thumbprint (RFC 7638)."""

    def __init__(self, key: OKPKey, retired: Sequence[OKPKey] = ()) -> None:
        if key.curve_name != "Ed25519" or not key.is_private:
            raise ConfigurationError("the proof signing key must be an Ed25519 private key")
        self._key = key
        self.kid = key.thumbprint()
        # kid -> public key: the current one first, then the retired ones.
        self._public = {
            public.thumbprint(): public
            for public in (OKPKey.import_key(key.as_dict(private=False)), *retired)
            if public.curve_name == "Ed25519"
        }
        self._registry = _registry()

    def sign(self, document: Mapping[str, Any]) -> tuple[str, bytes]:
        """The compact JWS of `document`, and the payload bytes it signs."""
        payload = canonical_payload(document)
        header = {"alg": ALGORITHM, "kid": self.kid, "typ": "proof+jws", "cty": "json"}
        token = jws.serialize_compact(header, payload, self._key, registry=self._registry)
        if len(token) > MAX_TOKEN_BYTES:
            raise ProofTooLargeError(f"the proof would be {len(token):,} bytes, over {MAX_TOKEN_BYTES:,}")
        return token, payload

    def verify(self, token: str) -> tuple[dict[str, Any], bytes]:
        """The document and payload bytes of a JWS signed by the key it names, this exchange's current or a
        retired one; `SignatureInvalidError` otherwise."""
        try:
            kid = jws.extract_compact(token.strip().encode(), registry=self._registry).headers().get("kid")
        except (JoseError, ValueError, TypeError) as exc:
            raise SignatureInvalidError(f"the proof's signature does not verify: {exc}") from exc
        key = self._public.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise SignatureInvalidError(f"the proof names no key of this exchange's (kid {str(kid)[:80]!r})")
        try:
            signed = jws.deserialize_compact(token.strip(), key, registry=self._registry)
            document = json.loads(signed.payload)
        except (JoseError, ValueError, TypeError) as exc:
            raise SignatureInvalidError(f"the proof's signature does not verify: {exc}") from exc
        if not isinstance(document, dict):
            raise SignatureInvalidError("the proof's payload is not a JSON object")
        return document, signed.payload

    def jwks(self) -> dict[str, Any]:
        """The public key set, current key first, for anyone to verify proofs offline."""
        return {"keys": [public_jwk(key) for key in self._public.values()]}


@contextlib.contextmanager
def _written_beside(path: Path, data: bytes) -> Iterator[str]:
    """The name of a file of its own beside `path` holding `data` whole (owner-only: mkstemp makes it
    0600), for the block to link or rename into place; removed after the block if it is still there, and
    the folder synced when the block succeeded, so the new name survives a crash."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        yield name
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


def _generate(path: Path) -> bytes:
    """A new key written to `path`, or the key another process wrote there first.

    The key is written whole to a file of its own, then linked to `path`: linking fails if `path`
    exists, so two processes starting at once never overwrite each other's key, and neither ever
    reads the other's file before it is complete (written in place, it could be read empty).
    """
    pem = OKPKey.generate_key("Ed25519").as_pem(private=True)
    with _written_beside(path, pem) as name:
        try:
            os.link(name, path)
        except FileExistsError:
            return path.read_bytes()
    return pem


def _retired(path: Path) -> list[OKPKey]:
    """The retired public keys kept at `path` (a JWKS); none if there is no such file."""
    if not path.exists():
        return []
    try:
        document = json.loads(path.read_bytes())
        return [OKPKey.import_key(node) for node in document["keys"]]
    except (OSError, ValueError, TypeError, KeyError, JoseError) as exc:
        raise ConfigurationError(
            f"cannot read the retired signing keys ({path}): {type(exc).__name__}"
        ) from exc


def _write_whole(path: Path, data: bytes) -> None:
    """Replace `path` with `data` at once."""
    with _written_beside(path, data) as name:
        os.replace(name, path)


def rotate_key(settings: ApiSettings) -> tuple[str, str]:
    """Retire the key file's key (its public key kept at `retired_keys_path`) and put a new one in its
    place; (retired kid, new kid). Running API processes sign with the new key once restarted, and
    verify proofs of either all along. A key given as a PEM setting is rotated where it is kept."""
    if settings.signing_key is not None:
        raise ConfigurationError(
            "the signing key is given by EXCHANGE_API__SIGNING_KEY: set a new one there, and add the old "
            f"one's public JWK to {settings.retired_keys_path}"
        )
    old = load_signer(settings)
    keys = old.jwks()["keys"]  # its key first, then those retired before
    # The retired key is kept before the new one replaces it: a crash in between loses nothing.
    _write_whole(settings.retired_keys_path, json.dumps({"keys": keys}, indent=2).encode())
    new = OKPKey.generate_key("Ed25519")
    _write_whole(settings.signing_key_path, new.as_pem(private=True))
    return old.kid, new.thumbprint()


def _warn_if_exposed(path: Path) -> None:
    """Warn when the key file can be read by others than its owner (copied in or restored with loose
    permissions): anyone who reads it can sign proofs as the exchange. A warning, not a refusal: a
    secret store may mount it group-readable for the service's group."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        _log.warning(
            "the proof signing key %s is readable by others than its owner (mode %o): chmod 600 it",
            path,
            stat.S_IMODE(mode),
        )


def load_signer(settings: ApiSettings) -> Signer:
    """The signer of the configured key: the PEM setting, else the key file (generated on first start),
    verifying with the retired keys too."""
    try:
        if settings.signing_key is not None:
            pem = settings.signing_key.get_secret_value().encode()
        elif settings.signing_key_path.exists():
            _warn_if_exposed(settings.signing_key_path)
            pem = settings.signing_key_path.read_bytes()
        else:
            pem = _generate(settings.signing_key_path)
        key = OKPKey.import_key(pem)
    except (OSError, ValueError, JoseError) as exc:
        # The message names the file, never the key.
        raise ConfigurationError(
            f"cannot load the proof signing key ({settings.signing_key_path}): {type(exc).__name__}"
        ) from exc
    return Signer(key, _retired(settings.retired_keys_path))

"""The HTTP API for approval services (FastAPI): verifications, proofs, profiles, 秒批, audit history.

Build it with `create_api(settings)`; `exchange api` serves it with uvicorn.

Deployment: the API is stateless and runs behind a TLS-terminating proxy that requires client
certificates (mutual TLS) from approval services; callers.json maps each certificate subject to a
caller (`tls_subject`). The API key is for local use and development only.
"""

from exchange.api.app import create_api

__all__ = ["create_api"]

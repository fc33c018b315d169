"""The baseline of `exchange bench api`: a bare Starlette route running the verification's profile query.

No authentication, policy, audit, facts or response model: one pooled connection, the same statement
as `load_profile` with the same parameters (the version last read, as the API's profile cache gives
it), a small JSON answer. Served by uvicorn exactly as `exchange api` serves the API, with
its garbage collector run the same way (`serving_heap`).
Run as `python -m bench.bare_api` with the bench's `EXCHANGE_*` environment.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import uvicorn
from psycopg.rows import dict_row
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from exchange.api.serving import server_options, serving_heap
from exchange.api.storage.pool import create_pool

# The very statement a verification runs for the current profile, so the baseline cannot drift from it.
from exchange.api.storage.profiles import _CURRENT as PROFILE_QUERY
from exchange.settings import ExchangeSettings, load_settings

ROUTE = "/profile"


def create_app(settings: ExchangeSettings) -> Starlette:
    """POST /profile {"subject_key": …} → {"version": …}: the profile row, read through the API's pool."""
    pool = create_pool(settings)
    # The version last read per subject, passed as the API passes the version its profile cache holds:
    # then PostgreSQL sends no document for a profile that did not change, for the API and here alike.
    known: dict[str, int] = {}

    async def profile(request: Request) -> JSONResponse:
        key = (await request.json())["subject_key"]
        async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cursor:
            await cursor.execute(PROFILE_QUERY, {"known": known.get(key), "subject_key": key})
            row = await cursor.fetchone()
        if row is None or row["version"] is None:  # one row, with no version for no profile
            return JSONResponse({"version": None})
        known[key] = row["version"]
        return JSONResponse({"version": row["version"]})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await pool.open(wait=True, timeout=settings.api.pool_timeout_seconds)
        try:
            with serving_heap():  # the garbage collector as the API runs it while serving
                yield
        finally:
            await pool.close()

    return Starlette(routes=[Route(ROUTE, profile, methods=["POST"])], lifespan=lifespan)


def main() -> None:
    """Serve the baseline on the API's host and port, with `exchange api`'s uvicorn options."""
    settings = load_settings()
    uvicorn.run(create_app(settings), **server_options(settings))


if __name__ == "__main__":
    main()

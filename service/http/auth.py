"""Bearer API-key check (enabled when CODEREWARD_API_KEYS is set)."""

from __future__ import annotations

import hmac

from fastapi import Request

from service.errors import Unauthorized


async def check_api_key(request: Request) -> None:
    """Raise 401 unless the request carries one of the configured keys."""
    keys: frozenset[str] = request.app.state.api_keys
    if not keys:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing bearer token")
    # constant-time comparison against every key, so timing does not leak which one is close
    ok = False
    for key in keys:
        ok |= hmac.compare_digest(token.strip().encode(), key.encode())
    if not ok:
        raise Unauthorized("invalid API key")

"""The gateway's own error tree: what went wrong, as an HTTP status and a machine code.

Raised anywhere below the API layer; ``gateway.api.errors`` renders each as the one error
envelope. Provider failures come from ``providers.base.ProviderError`` instead::

    GatewayError                 status and code set per instance
     ├── InvalidRequest          400 (validation_error, unknown_parameter, unknown_model,
     │                                unsupported_parameter, invalid_json, ...)
     ├── Unauthorized            401 missing_api_key | invalid_api_key
     ├── Forbidden               403 invalid_signature | url_expired (download URLs)
     ├── NotFound                404 not_found
     ├── Conflict                409 idempotency_conflict | request_in_progress
     ├── RangeNotSatisfiable     416 range_not_satisfiable (with Content-Range)
     ├── TooManyRequests         429 rate_limited | too_many_jobs (with Retry-After)
     └── ServiceUnavailable      503 store_unavailable | provider_not_configured |
                                     provider_unavailable (circuit open, Retry-After)

A create that failed upstream is replayed, for the same ``Idempotency-Key``, as the same
status and code (``GatewayError(status_code=..., code=...)``).
"""

from __future__ import annotations

import math
from typing import Any


class GatewayError(Exception):
    status_code = 500
    code = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        status_code: int | None = None,
        details: list[str] | None = None,
        headers: dict[str, str] | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason  # AI Stats' finer cause (``reason``), where there is one
        self.code = code or self.code
        self.param = param
        self.status_code = status_code or self.status_code
        self.details = details
        self.headers = headers or {}


class InvalidRequest(GatewayError):
    status_code = 400
    code = "validation_error"


class Unauthorized(GatewayError):
    status_code = 401
    code = "invalid_api_key"


class Forbidden(GatewayError):
    status_code = 403
    code = "invalid_signature"


class NotFound(GatewayError):
    status_code = 404
    code = "not_found"


class Conflict(GatewayError):
    status_code = 409
    code = "idempotency_conflict"


class RangeNotSatisfiable(GatewayError):
    """A ``Range`` outside the object: answered with ``Content-Range: bytes */{size}``."""

    status_code = 416
    code = "range_not_satisfiable"

    def __init__(self, size: int) -> None:
        super().__init__(
            f"The requested range is outside the object's {size} bytes.",
            headers={"Content-Range": f"bytes */{size}"},
        )


class TooManyRequests(GatewayError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float, **kwargs: Any) -> None:
        seconds = str(max(1, math.ceil(retry_after)))
        super().__init__(message, headers={"Retry-After": seconds}, **kwargs)


class ServiceUnavailable(GatewayError):
    status_code = 503
    code = "store_unavailable"

"""The appliance's one exception tree.

Every error a client can see is an ``ApplianceError``; each class knows its HTTP status and
the OpenAI error ``type`` and ``code``, so the HTTP layer shapes them all the same way::

    ApplianceError                      500 server_error
    ├── InvalidRequest                  400 invalid_request_error   (param names the field)
    │   ├── UnsupportedParameter        400 code=unsupported_parameter
    │   └── ContextLengthExceeded       400 code=context_length_exceeded
    ├── AuthenticationFailed            401 code=invalid_api_key
    ├── PermissionDenied                403 code=permission_denied
    │   └── PolicyBlocked               403 code=sensitivity_policy
    ├── NotFound                        404 code=not_found
    │   └── ModelNotFound               404 code=model_not_found
    ├── MethodNotAllowed                405
    ├── Conflict                        409 code=conflict
    ├── PayloadTooLarge                 413 code=payload_too_large
    ├── RateLimited                     429 rate_limit_error        (retry_after seconds)
    ├── UpstreamError                   502 upstream_error
    │   └── UpstreamTimeout             504 code=upstream_timeout
    └── ServiceUnavailable              503 service_unavailable     (retry_after seconds)
        └── Overloaded                  503 code=queue_full

Lower-layer errors (local_models, providers, libraries) are mapped onto this tree at the
adapter boundary with ``raise ... from exc``. Anything else reaches a client as a generic 500
that names only the request id: no trace, no internal detail.
"""

from __future__ import annotations

import math
from typing import Any


class ApplianceError(Exception):
    """Base of every client-visible error."""

    status: int = 500
    error_type: str = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.retry_after = retry_after
        #: Headers the pipeline learned before failing (x-ratelimit-*, route headers).
        self.extra_headers: dict[str, str] = {}

    def to_body(self) -> dict[str, Any]:
        """The OpenAI error body: ``{"error": {"message", "type", "param", "code"}}``."""
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return dict(self.extra_headers)
        return {**self.extra_headers, "retry-after": str(max(1, math.ceil(self.retry_after)))}


class InvalidRequest(ApplianceError):
    status = 400
    error_type = "invalid_request_error"
    code = "invalid_request"


class UnsupportedParameter(InvalidRequest):
    code = "unsupported_parameter"


class ContextLengthExceeded(InvalidRequest):
    code = "context_length_exceeded"


class AuthenticationFailed(ApplianceError):
    status = 401
    error_type = "invalid_request_error"
    code = "invalid_api_key"


class PermissionDenied(ApplianceError):
    status = 403
    error_type = "permission_error"
    code = "permission_denied"


class PolicyBlocked(PermissionDenied):
    """The request's sensitivity may not reach the zone of the model it asked for."""

    code = "sensitivity_policy"


class NotFound(ApplianceError):
    status = 404
    error_type = "invalid_request_error"
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class MethodNotAllowed(ApplianceError):
    status = 405
    error_type = "invalid_request_error"
    code = "method_not_allowed"


class Conflict(ApplianceError):
    status = 409
    error_type = "invalid_request_error"
    code = "conflict"


class PayloadTooLarge(ApplianceError):
    status = 413
    error_type = "invalid_request_error"
    code = "payload_too_large"


class RateLimited(ApplianceError):
    status = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"


class UpstreamError(ApplianceError):
    status = 502
    error_type = "upstream_error"
    code = "upstream_error"


class UpstreamTimeout(UpstreamError):
    """The upstream did not connect, start or continue answering in time."""

    status = 504
    code = "upstream_timeout"


class ServiceUnavailable(ApplianceError):
    status = 503
    error_type = "service_unavailable"
    code = "service_unavailable"


class Overloaded(ServiceUnavailable):
    code = "queue_full"


def internal_error(request_id: str) -> ApplianceError:
    """The only thing a client learns about an unexpected failure: that it happened, and where
    to look in the server's log."""
    return ApplianceError(
        f"The server had an internal error while processing request {request_id}.",
        code="internal_error",
    )

"""Central's one exception tree; each class knows its HTTP status and error ``type``::

    CentralError                    500 server_error
    ├── InvalidRequest              400 invalid_request_error   code=invalid_request
    ├── Unauthorized                401 authentication_error    (code says why, e.g. stale_request)
    ├── NotFound                    404 invalid_request_error   code=not_found
    ├── Conflict                    409 invalid_request_error   (sequence_conflict, batch_conflict,
    │                                                            checkpoint_invalid, audit_key_changed)
    └── PayloadTooLarge             413 invalid_request_error   code=payload_too_large

The HTTP layer shapes them all as ``{"error": {"message", "type", "code"}}``; anything else is a
generic 500 without detail.
"""

from __future__ import annotations

from typing import Any


class CentralError(Exception):
    status = 500
    error_type = "server_error"
    code = "server_error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def to_body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.error_type, "code": self.code}}


class InvalidRequest(CentralError):
    status = 400
    error_type = "invalid_request_error"
    code = "invalid_request"


class Unauthorized(CentralError):
    status = 401
    error_type = "authentication_error"
    code = "unauthorized"


class NotFound(CentralError):
    status = 404
    error_type = "invalid_request_error"
    code = "not_found"


class Conflict(CentralError):
    status = 409
    error_type = "invalid_request_error"
    code = "conflict"


class PayloadTooLarge(CentralError):
    status = 413
    error_type = "invalid_request_error"
    code = "payload_too_large"

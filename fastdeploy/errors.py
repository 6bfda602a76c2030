"""The errors fastdeploy reports to clients, each with a stable code and HTTP status.

One falcon handler turns any of them into ``{"error": {"code", "message"}}``,
so resources raise and never format error bodies themselves.
"""

from __future__ import annotations


class FastDeployError(Exception):
    code = "internal_error"
    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def headers(self) -> dict[str, str]:
        return {}

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}


class BadRequest(FastDeployError):
    code = "bad_request"
    http_status = 400


class NotFound(FastDeployError):
    code = "not_found"
    http_status = 404


class NotAcceptable(FastDeployError):
    code = "not_acceptable"
    http_status = 406


class RequestTimeout(FastDeployError):
    code = "request_timeout"
    http_status = 408

    def headers(self) -> dict[str, str]:
        return {"Connection": "close"}  # the rest of the body may still come: do not read it as a request


class Conflict(FastDeployError):
    code = "conflict"
    http_status = 409


class LengthRequired(FastDeployError):
    code = "length_required"
    http_status = 411


class TooLarge(FastDeployError):
    code = "too_large"
    http_status = 413


class UnsupportedMediaType(FastDeployError):
    code = "unsupported_media_type"
    http_status = 415


class WrongShape(FastDeployError):
    code = "wrong_shape"
    http_status = 422


class QueueFull(FastDeployError):
    code = "queue_full"
    http_status = 503

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class NotReady(FastDeployError):
    code = "not_ready"
    http_status = 503


class SyncTimeout(FastDeployError):
    """The wait ended, not the work: the body carries the id to poll."""

    code = "timeout"
    http_status = 504

    def __init__(self, message: str, request_id: str) -> None:
        super().__init__(message)
        self.request_id = request_id

    def body(self) -> dict:
        return {"id": self.request_id, **super().body()}


class RecipeError(Exception):
    """A recipe cannot be served; the message names the file and what to fix."""

"""The server's errors: an IMGAPI code, its HTTP status, the body ``{code, message[, errors]}``."""

from __future__ import annotations

from typing import Any

from liveforge.img.errors import ImgadmError

# IMGAPI's error codes and the status each is answered with
STATUS = {
    "InvalidParameter": 422,
    "ValidationFailed": 422,
    "ImageAlreadyActivated": 422,
    "NoActivationNoFile": 422,
    "ImageFilesImmutable": 422,
    "UnauthorizedError": 401,
    "ResourceNotFound": 404,
    "BadMethod": 405,
    "ImageUuidAlreadyExists": 409,
    "UploadInProgress": 409,
    "PayloadTooLarge": 413,
    "RequestedRangeNotSatisfiable": 416,
    "InternalError": 500,
}


class ApiError(ImgadmError):
    """An error answered to a client; ``errors`` lists bad fields as ``{field, code, message}``."""

    def __init__(self, code: str, message: str, errors: list[dict[str, str]] | None = None):
        super().__init__(code, message)
        self.errors = errors or []

    @property
    def status(self) -> int:
        return STATUS.get(self.code, 500)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.errors:
            body["errors"] = self.errors
        return body


def not_found(uuid: str, what: str = "image") -> ApiError:
    return ApiError("ResourceNotFound", f'{what} "{uuid}" was not found')

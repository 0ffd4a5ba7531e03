"""imgadm's errors: each carries the code that ``imgadm -E`` and the IMGAPI error bodies name.

``main()`` prints ``imgadm <subcmd>: error (<Code>): <message>`` and exits with ``exit_code``."""

from __future__ import annotations

from liveforge.util.errors import LiveforgeError

# codes whose exit status is 3 rather than 1 (the image a command needs is not there)
NOT_INSTALLED_CODES = frozenset({"ImageNotInstalled", "OriginNotInstalled"})


class ImgadmError(LiveforgeError):
    """An error with an imgadm/IMGAPI code (``ImageNotFound``, ``DownloadError``, ...)."""

    def __init__(self, code: str, message: str):
        self.code = code
        self.message = message
        super().__init__(message)

    @property
    def exit_code(self) -> int:  # type: ignore[override]
        return 3 if self.code in NOT_INSTALLED_CODES else 1

    def record(self) -> dict[str, dict[str, str]]:
        """The JSON record ``-E`` prints as the last stderr line."""
        return {"err": {"code": self.code, "message": self.message}}


class ManifestValidation(ImgadmError):
    """An image manifest with bad fields: every (field, problem) is listed, in field order."""

    def __init__(self, problems: list[tuple[str, str]], where: str = ""):
        self.problems = list(problems)
        listed = ", ".join(f"{field} ({problem})" for field, problem in self.problems)
        prefix = f"{where}: " if where else ""
        super().__init__("ManifestValidation", f"{prefix}invalid manifest: {listed}")

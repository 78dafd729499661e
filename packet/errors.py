"""The project's one exception hierarchy and its stable exit codes.

Owns: every error the library raises on purpose, each with a stable `reason` code (for logs,
manifests and tests) and an exit code (for the CLI). Must not: print, exit, or log. Only the CLI
turns these into `Error: ...` and an exit status.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented, stable exit codes of `imr-packet` (README, "Exit codes")."""

    ok = 0
    check_failed = 1  # a check, verify or the release gate failed
    usage = 2  # usage or configuration error
    bad_input = 3  # an input could not be used


class PacketError(Exception):
    """Base class. `reason` is a stable machine-readable code; the message is for people."""

    exit_code: ExitCode = ExitCode.check_failed
    reason: str = "error"

    def __init__(self, message: str, *, reason: str | None = None):
        super().__init__(message)
        if reason is not None:
            self.reason = reason

    @property
    def message(self) -> str:
        return str(self)


class UsageError(PacketError):
    exit_code = ExitCode.usage
    reason = "usage"


class ConfigError(PacketError):
    """Configuration is invalid. `problems` lists every problem found, each naming its key."""

    exit_code = ExitCode.usage
    reason = "config"

    def __init__(self, problems: list[str], *, source: str = "configuration"):
        self.problems = list(problems)
        self.source = source
        super().__init__(f"{source}: " + "; ".join(self.problems))


class CaseError(PacketError):
    """case.toml is missing or invalid, or the case id is not acceptable."""

    exit_code = ExitCode.bad_input
    reason = "case"

    def __init__(self, problems: list[str] | str, *, reason: str | None = None):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems), reason=reason)


class RefusedFile(PacketError):
    """A clerk's file cannot be used. `reason` is the code; `what_to_do` is advice for the clerk.

    `transient` marks failures worth retrying (e.g. a conversion timeout on a busy machine).
    """

    exit_code = ExitCode.bad_input
    reason = "refused"

    def __init__(self, reason: str, message: str, what_to_do: str, *, transient: bool = False):
        super().__init__(message, reason=reason)
        self.what_to_do = what_to_do
        self.transient = transient


class GateFailed(PacketError):
    """The release gate did not hold; `items` lists each failed item in plain language."""

    exit_code = ExitCode.check_failed
    reason = "gate"

    def __init__(self, items: list[str]):
        self.items = list(items)
        super().__init__("the release gate failed: " + "; ".join(self.items))


class VerifyFailed(PacketError):
    exit_code = ExitCode.check_failed
    reason = "verify"

    def __init__(self, failures: list[str]):
        self.failures = list(failures)
        super().__init__("verify failed: " + "; ".join(self.failures))


class TemplateError(PacketError):
    """A letter or form template could not be rendered (names the template and the variable)."""

    exit_code = ExitCode.usage
    reason = "template"


class AlreadyRunning(PacketError):
    exit_code = ExitCode.usage
    reason = "already_running"


class OcrError(PacketError):
    """The OCR engine (Tesseract) cannot be used: not installed, a language missing, or it failed.

    A page that is merely hard to read is not an error: it comes back with its confidence and status.
    """

    reason = "ocr"

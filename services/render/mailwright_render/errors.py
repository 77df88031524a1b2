"""The render domain's errors and the issues found when a template is compiled or validated.

Everything a template author can get wrong is an `Issue` with a part, a line and a column;
publishing fails with `TemplateInvalid` carrying every error at once. Everything that goes
wrong while rendering one recipient is a `RenderError`; the batch path turns it into a
per-recipient failure instead of failing the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Severity(Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Issue:
    """One finding about a template: where it is, how bad, and what to do about it.

    `part` names the piece of the template (`html`, `text`, `subject[b]`,
    `block hero/vip`); `line` and `column` are 1-based positions in that piece as the
    author wrote it, or None when the finding is about the piece as a whole.
    """

    severity: Severity
    code: str
    message: str
    part: str
    line: int | None = None
    column: int | None = None

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def __str__(self) -> str:
        where = self.part
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.severity.value}: {self.message} [{self.code}]"


class TemplateError(Exception):
    """Base of every error the render domain raises on purpose."""


class TemplateInvalid(TemplateError):
    """A template cannot be compiled or published; `issues` lists every error and warning."""

    def __init__(self, issues: tuple[Issue, ...]) -> None:
        self.issues = issues
        errors = [issue for issue in issues if issue.is_error]
        first = str(errors[0]) if errors else "template is invalid"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(first + more)

    @property
    def errors(self) -> tuple[Issue, ...]:
        return tuple(issue for issue in self.issues if issue.is_error)


class RenderError(TemplateError):
    """Rendering one recipient failed; `part` says which piece was being rendered."""

    def __init__(self, message: str, *, part: str = "", line: int | None = None) -> None:
        self.part = part
        self.line = line
        self.reason = message
        where = f"{part}:{line}: " if part and line else (f"{part}: " if part else "")
        super().__init__(where + message)

    def located(self, part: str, line: int | None) -> RenderError:
        """The same error, told where it happened (keeps the subclass)."""
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        RenderError.__init__(clone, self.reason, part=part, line=line if line else self.line)
        return clone


class RenderLimitExceeded(RenderError):
    """A render went over its budget of time, operations, output size, range or recursion."""

    def __init__(self, limit: str, message: str, *, part: str = "", line: int | None = None):
        self.limit = limit
        super().__init__(message, part=part, line=line)


class SandboxViolation(RenderError):
    """A template tried to reach something the sandbox does not allow."""

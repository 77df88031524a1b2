"""The render service's settings section (`MAILWRIGHT_SERVICES__RENDER__<FIELD>`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mailwright.runtime.settings import Duration
from mailwright_render.errors import Severity
from mailwright_render.scope import RenderLimits


class RenderSettings(BaseModel):
    """How the render service validates and renders.

    `unknown_variables`: a variable that is not in the profile schema fails publishing
    (`error`) or is a warning (`warning`). While the profile service cannot be asked
    for its schema, it is always a warning.
    """

    model_config = ConfigDict(extra="forbid")

    unknown_variables: Literal["warning", "error"] = "warning"
    render_timeout: Duration = timedelta(seconds=2)
    """Wall-clock time one recipient's message may take."""
    max_operations: int = Field(default=200_000, gt=0)
    max_output_chars: int = Field(default=2_000_000, gt=0)
    batch_timeout: Duration = timedelta(seconds=30)
    """Wall-clock time one RenderBatch may take; beyond it the call is RESOURCE_EXHAUSTED."""
    max_recipients: int = Field(default=1000, gt=0, le=10_000)
    cache_size: int = Field(default=512, ge=1)
    """Compiled template versions kept in memory (the render cache)."""
    profile_timeout: Duration = timedelta(seconds=3)
    """Deadline of calls to the profile service (schema at publish, traits in previews)."""
    schema_cache: Duration = timedelta(seconds=30)
    default_locale: str = "en"
    default_timezone: str = "UTC"

    @property
    def limits(self) -> RenderLimits:
        return RenderLimits(
            max_seconds=self.render_timeout.total_seconds(),
            max_operations=self.max_operations,
            max_output_chars=self.max_output_chars,
        )

    @property
    def unknown_variable_severity(self) -> Severity:
        return Severity.ERROR if self.unknown_variables == "error" else Severity.WARNING

"""Mailwright render service: templates compiled once at publish, rendered fast per recipient.

The domain, importable without gRPC or a database:

- `TemplateSource` (+ `Variant`, `ContentBlock`, `BlockVariant`, conditions) is a
  template version as authored; `compile_template` / `validate_template` turn it into a
  `CompiledTemplate` or report `Issue`s (`TemplateInvalid`);
- `Renderer.render` / `Renderer.render_batch` render a `CompiledTemplate` for a
  `Recipient` and `Delivery` from a `Sender` into a `RenderedEmail`; `to_mime` builds
  the MIME message;
- `load_template_file` reads template files; `mailwright render` is the CLI.
"""

from mailwright_render.artefact import (
    CompiledBlock,
    CompiledTemplate,
    CompiledVariant,
    UnknownVariant,
)
from mailwright_render.compile import CompileOptions, compile_template, validate_template
from mailwright_render.context import (
    DEFAULT_HUBSPOT_PROPERTIES,
    Delivery,
    Recipient,
    Sender,
)
from mailwright_render.errors import (
    Issue,
    RenderError,
    RenderLimitExceeded,
    SandboxViolation,
    Severity,
    TemplateError,
    TemplateInvalid,
)
from mailwright_render.fileformat import (
    TemplateFile,
    TemplateFileError,
    load_template_file,
    read_template_file,
    source_to_mapping,
    template_from_mapping,
)
from mailwright_render.htmlpass import Link
from mailwright_render.mergetags import DEFAULT_MERGE_FIELDS, MergeField
from mailwright_render.mime import to_mime
from mailwright_render.model import (
    BlockVariant,
    Condition,
    ContentBlock,
    RuleCondition,
    RuleEvaluator,
    SegmentCondition,
    TemplateKind,
    TemplateSource,
    Variant,
    pick_variant,
)
from mailwright_render.render import (
    RenderedEmail,
    Renderer,
    RenderFailure,
    RenderOutcome,
    TemplateCache,
)
from mailwright_render.sandbox import MissingPolicy
from mailwright_render.scope import RenderLimits
from mailwright_render.tracking import TrackingConfig

__all__ = [
    "DEFAULT_HUBSPOT_PROPERTIES",
    "DEFAULT_MERGE_FIELDS",
    "BlockVariant",
    "CompileOptions",
    "CompiledBlock",
    "CompiledTemplate",
    "CompiledVariant",
    "Condition",
    "ContentBlock",
    "Delivery",
    "Issue",
    "Link",
    "MergeField",
    "MissingPolicy",
    "Recipient",
    "RenderError",
    "RenderFailure",
    "RenderLimitExceeded",
    "RenderLimits",
    "RenderOutcome",
    "RenderedEmail",
    "Renderer",
    "RuleCondition",
    "RuleEvaluator",
    "SandboxViolation",
    "SegmentCondition",
    "Sender",
    "Severity",
    "TemplateCache",
    "TemplateError",
    "TemplateFile",
    "TemplateFileError",
    "TemplateInvalid",
    "TemplateKind",
    "TemplateSource",
    "TrackingConfig",
    "UnknownVariant",
    "Variant",
    "compile_template",
    "load_template_file",
    "pick_variant",
    "read_template_file",
    "source_to_mapping",
    "template_from_mapping",
    "to_mime",
    "validate_template",
]

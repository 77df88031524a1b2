"""Rendering: a compiled template and a recipient in, a personalised message out.

This is the delivery path, so it does as little as possible per recipient: the Jinja
code of a template version is compiled once and cached by the artefact's digest; the
variables shared by a batch (sender, globals) are built once per batch; each recipient
costs one namespace, one render per part within one budget, and one HMAC per distinct
tracked URL. A recipient whose render fails becomes a `RenderFailure` in a batch and
does not stop the others.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from types import TracebackType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import Template, TemplateError, UndefinedError
from jinja2.exceptions import SecurityError

from mailwright_render.artefact import CompiledTemplate, UnknownVariant
from mailwright_render.context import (
    DEFAULT_HUBSPOT_PROPERTIES,
    Delivery,
    Links,
    Recipient,
    Sender,
    frozen,
    sender_namespace,
    site_settings,
    template_namespace,
)
from mailwright_render.engine import environment
from mailwright_render.errors import RenderError, RenderLimitExceeded, SandboxViolation
from mailwright_render.model import RuleEvaluator, TemplateKind
from mailwright_render.runtime import MessageRuntime
from mailwright_render.scope import RenderLimits, RenderScope, render_scope
from mailwright_render.textpart import tidy
from mailwright_render.tracking import TokenTails, Tracker, TrackingConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderedEmail:
    """One recipient's message, ready for an email provider or for `to_mime`."""

    profile_id: str
    send_id: str
    subject: str
    preheader: str
    html: str
    text: str
    headers: tuple[tuple[str, str], ...]
    subject_variant: str
    preheader_variant: str | None
    # Name and chosen variant key ("" for the default) of each content block shown.
    block_variants: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RenderFailure:
    """A recipient of a batch whose message could not be rendered, and why."""

    profile_id: str
    send_id: str
    error: RenderError


RenderOutcome = RenderedEmail | RenderFailure


@dataclass(frozen=True)
class LoadedTemplate:
    """A compiled template with its Jinja code compiled, as kept in the cache."""

    compiled: CompiledTemplate
    subject: Mapping[str, Template]
    preheader: Mapping[str, Template]
    html: Template
    text: Template


class TemplateCache:
    """Compiled Jinja code per template version (by digest), least recently used out."""

    def __init__(self, max_size: int = 256) -> None:
        self._max_size = max_size
        self._entries: OrderedDict[str, LoadedTemplate] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def load(self, compiled: CompiledTemplate) -> LoadedTemplate:
        with self._lock:
            entry = self._entries.get(compiled.digest)
            if entry is not None:
                self._entries.move_to_end(compiled.digest)
                self.hits += 1
                return entry
        loaded = load_template(compiled)
        with self._lock:
            self.misses += 1
            self._entries[compiled.digest] = loaded
            while len(self._entries) > self._max_size:
                self._entries.popitem(last=False)
        return loaded


def load_template(compiled: CompiledTemplate) -> LoadedTemplate:
    """Compile the Jinja code of every part (what the cache saves per recipient)."""
    text_env = environment(False, compiled.missing)
    html_env = environment(True, compiled.missing)
    log.debug("compiling jinja code of template %s", compiled.digest[:12])
    return LoadedTemplate(
        compiled=compiled,
        subject={v.key: text_env.from_string(v.source) for v in compiled.subject},
        preheader={v.key: text_env.from_string(v.source) for v in compiled.preheader},
        html=html_env.from_string(compiled.html),
        text=text_env.from_string(compiled.text),
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Renderer:
    """Renders compiled templates for recipients, alone or in batches.

    `tracking` (None for previews) signs links, the pixel and unsubscribe URLs;
    `rule_evaluator` decides content blocks with rule conditions.
    """

    def __init__(
        self,
        *,
        tracking: TrackingConfig | None = None,
        limits: RenderLimits | None = None,
        rule_evaluator: RuleEvaluator | None = None,
        hubspot_properties: Mapping[str, str] = DEFAULT_HUBSPOT_PROPERTIES,
        default_locale: str = "en",
        default_timezone: str = "UTC",
        clock: Callable[[], datetime] = _utc_now,
        cache: TemplateCache | None = None,
    ) -> None:
        self.tracking = tracking
        self.limits = limits or RenderLimits()
        self.rule_evaluator = rule_evaluator
        self.hubspot_properties = hubspot_properties
        self.default_locale = default_locale
        self.default_timezone = _zone(default_timezone) or UTC
        self.clock = clock
        self.cache = cache or TemplateCache()
        # What the tracking tokens of this hour share; a new hour brings a new one.
        self._tails: TokenTails | None = None

    def render(
        self, compiled: CompiledTemplate, recipient: Recipient, delivery: Delivery, sender: Sender
    ) -> RenderedEmail:
        """Render one message; raises `RenderError` (or a subclass) when it cannot."""
        loaded = self.cache.load(compiled)
        return self._render(loaded, self._shared(loaded, sender), recipient, delivery, sender)

    def render_batch(
        self,
        compiled: CompiledTemplate,
        sender: Sender,
        items: Iterable[tuple[Recipient, Delivery]],
    ) -> Iterator[RenderOutcome]:
        """Render many recipients of one template version; failures do not stop the batch."""
        loaded = self.cache.load(compiled)
        shared = self._shared(loaded, sender)
        for recipient, delivery in items:
            try:
                yield self._render(loaded, shared, recipient, delivery, sender)
            except RenderError as error:
                log.info("render of send %s failed: %s", delivery.send_id, type(error).__name__)
                yield RenderFailure(recipient.profile_id, delivery.send_id, error)

    def _shared(self, loaded: LoadedTemplate, sender: Sender) -> dict[str, object]:
        shared: dict[str, object] = dict(loaded.html.environment.globals)
        shared["sender"] = sender_namespace(sender)
        shared["site_settings"] = site_settings(sender)
        return shared

    def _render(
        self,
        loaded: LoadedTemplate,
        shared: Mapping[str, object],
        recipient: Recipient,
        delivery: Delivery,
        sender: Sender,
    ) -> RenderedEmail:
        compiled = loaded.compiled
        try:
            subject_variant = compiled.subject_variant(delivery.subject_variant)
            preheader_variant = compiled.preheader_variant(delivery.preheader_variant)
        except UnknownVariant as error:
            raise RenderError(str(error.args[0]), part="subject") from None
        now = self.clock()
        tracker = None
        if self.tracking is not None:
            tracker = Tracker(
                self.tracking,
                delivery.workspace,
                delivery.send_id,
                now.timestamp(),
                recipient.profile_id,
                self._tails,
            )
            self._tails = tracker.tails
        given = delivery.links
        links = frozen(
            Links,
            unsubscribe=tracker.unsubscribe_url()
            if tracker is not None
            else given.get("unsubscribe", ""),
            view_in_browser=given.get("view_in_browser", "") if given else "",
            preferences=given.get("preferences", "") if given else "",
        )
        runtime = MessageRuntime(compiled, recipient, sender, links, tracker, self.rule_evaluator)
        namespace = template_namespace(recipient, delivery, shared, links, self.hubspot_properties)
        scope = RenderScope(
            self.limits,
            locale=recipient.locale or self.default_locale,
            timezone=_zone(recipient.timezone) or self.default_timezone,
            now=now,
            hooks=runtime,
        )
        with render_scope(scope):
            subject = " ".join(
                _run(loaded.subject[subject_variant.key], namespace, scope, "subject").split()
            )
            runtime.subject = namespace["subject"] = subject
            preheader = ""
            if preheader_variant is not None:
                part = loaded.preheader[preheader_variant.key]
                preheader = " ".join(_run(part, namespace, scope, "preheader").split())
            runtime.preheader = namespace["preheader"] = preheader
            html = _run(loaded.html, namespace, scope, "html")
            text = tidy(_run(loaded.text, namespace, scope, "text"))
        headers = (
            tracker.headers()
            if tracker is not None and compiled.kind is TemplateKind.MARKETING
            else ()
        )
        return frozen(
            RenderedEmail,
            profile_id=recipient.profile_id,
            send_id=delivery.send_id,
            subject=subject,
            preheader=preheader,
            html=html,
            text=text,
            headers=headers,
            subject_variant=subject_variant.key,
            preheader_variant=preheader_variant.key if preheader_variant else None,
            block_variants=runtime.chosen_blocks(),
        )


def _run(template: Template, namespace: dict[str, object], scope: RenderScope, part: str) -> str:
    """Render one part, streaming, within the scope's output limit; map every failure."""
    limit = scope.limits.max_output_chars
    try:
        # Chunks are references to template text and to values already size-checked, so
        # collecting them costs little; they are measured before they are joined.
        # The namespace already holds the globals; a context built without them skips
        # Jinja's per-render copy of the globals' keys.
        context = template.environment.context_class(
            template.environment, namespace, template.name, template.blocks
        )
        chunks = list(template.root_render_func(context))
        if sum(map(len, chunks)) > limit:
            raise RenderLimitExceeded(
                "output", f"the {part} part would be longer than {limit} characters"
            )
        scope.check_clock()
    except RenderError as error:
        raise error.located(part, _template_line(error.__traceback__)) from None
    except SecurityError as error:
        raise SandboxViolation(
            str(error), part=part, line=_template_line(error.__traceback__)
        ) from None
    except RecursionError:
        raise RenderLimitExceeded(
            "recursion", "templates may not recurse this deeply", part=part
        ) from None
    except UndefinedError as error:
        raise RenderError(str(error), part=part, line=_template_line(error.__traceback__)) from None
    except (
        TemplateError,
        TypeError,
        ValueError,
        ArithmeticError,
        LookupError,
        AttributeError,
    ) as error:
        line = _template_line(error.__traceback__)
        raise RenderError(f"{type(error).__name__}: {error}", part=part, line=line) from None
    except MemoryError:
        raise RenderLimitExceeded("output", "the template ran out of memory", part=part) from None
    return "".join(chunks)


def _template_line(traceback: TracebackType | None) -> int | None:
    """The template line of the innermost frame of compiled template code, if any."""
    line = None
    while traceback is not None:
        template = traceback.tb_frame.f_globals.get("__jinja_template__")
        if template is not None:
            line = template.get_corresponding_lineno(traceback.tb_lineno)
        traceback = traceback.tb_next
    return line


def _zone(name: str | None) -> tzinfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None

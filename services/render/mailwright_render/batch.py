"""The delivery path: one published version rendered for many recipients, fast.

Published versions are immutable, so their compiled artefacts are kept in a process-wide
LRU keyed by (workspace, template, version): a RenderBatch after the first one for a
version reads nothing from the database and parses nothing. The renderer's own cache
keeps each artefact's compiled Jinja code by digest. Per recipient what remains is the
sandboxed render itself and one HMAC per tracked link.

A recipient whose render fails (a limit, a sandbox refusal, a missing required value, a
bad address for MIME) gets an error in its result and the others render. The batch as a
whole has two budgets — wall-clock time and the size of the response — and going over
either is RESOURCE_EXHAUSTED, asking for smaller batches.
"""

from __future__ import annotations

import email.errors
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from mailwright.errors import ResourceExhausted
from mailwright.runtime.db import Database
from mailwright.tracking import TrackingSigner
from mailwright_render.artefact import CompiledTemplate
from mailwright_render.blockrules import BlockRules
from mailwright_render.config import RenderSettings
from mailwright_render.context import Delivery, Recipient, Sender
from mailwright_render.errors import RenderError, RenderLimitExceeded, SandboxViolation
from mailwright_render.mime import to_mime
from mailwright_render.render import RenderedEmail, Renderer, RenderFailure, TemplateCache
from mailwright_render.store import TemplateStore
from mailwright_render.tracking import TrackingConfig

log = logging.getLogger(__name__)

VersionKey = tuple[str, str, int]


@dataclass(frozen=True)
class PublishedVersion:
    """What a send of a version needs: its artefact and the sender's postal address."""

    compiled: CompiledTemplate
    postal_address: str


@dataclass(frozen=True)
class SendOptions:
    """The sender and tracking settings of one render call."""

    from_address: str = ""
    from_name: str = ""
    reply_to: str = ""
    track: bool = False
    mime: bool = False
    unsubscribe_mailto: str = ""


@dataclass(slots=True)
class Rendering:
    """One recipient's result: the message (and MIME bytes), or an error and its code."""

    send_id: str
    email: RenderedEmail | None = None
    mime: bytes | None = None
    error: str = ""
    code: str = ""


def failure_code(error: RenderError) -> str:
    """`limit_time`, `limit_output`, … for limits; `sandbox`; `render` for the rest."""
    if isinstance(error, RenderLimitExceeded):
        return f"limit_{error.limit}"
    if isinstance(error, SandboxViolation):
        return "sandbox"
    return "render"


class BatchRenderer:
    """Renders published versions for recipients, with the caches of this process."""

    def __init__(
        self,
        db: Database,
        store: TemplateStore,
        signer: TrackingSigner,
        public_base_url: str,
        settings: RenderSettings,
        *,
        max_response_bytes: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.db = db
        self.store = store
        self.signer = signer
        self.base_url = public_base_url
        self.settings = settings
        self.max_response_bytes = max_response_bytes
        self.clock = clock
        self.rules = BlockRules(clock)
        self.cache = TemplateCache(max_size=settings.cache_size)
        self._versions: OrderedDict[VersionKey, PublishedVersion] = OrderedDict()
        self._lock = threading.Lock()

    # Published versions -------------------------------------------------------------

    async def published(self, workspace: str, template_id: str, version: int) -> PublishedVersion:
        """A published version's artefact: from memory, else loaded once from the store."""
        key = (workspace, template_id, version)
        with self._lock:
            found = self._versions.get(key)
            if found is not None:
                self._versions.move_to_end(key)
                return found
        stored = await self.db.run(self.store.artefact, workspace, template_id, version)
        loaded = PublishedVersion(
            CompiledTemplate.from_json(stored.artefact), stored.postal_address
        )
        with self._lock:
            self._versions[key] = loaded
            while len(self._versions) > self.settings.cache_size:
                self._versions.popitem(last=False)
        return loaded

    # Rendering ----------------------------------------------------------------------

    def renderer(self, options: SendOptions, *, preview: bool = False) -> Renderer:
        tracking = None
        if options.track or not preview:
            # Sends always get a signed unsubscribe URL; `track` adds clicks and opens.
            tracking = TrackingConfig(
                self.base_url,
                self.signer,
                unsubscribe_mailto=options.unsubscribe_mailto or None,
                track_clicks=options.track,
                track_opens=options.track,
            )
        return Renderer(
            tracking=tracking,
            limits=self.settings.limits,
            rule_evaluator=self.rules,
            default_locale=self.settings.default_locale,
            default_timezone=self.settings.default_timezone,
            clock=self.clock,
            cache=self.cache,
        )

    @staticmethod
    def sender(options: SendOptions, postal_address: str) -> Sender:
        return Sender(
            name=options.from_name,
            email=options.from_address,
            postal_address=postal_address,
            company=options.from_name,
            reply_to=options.reply_to or None,
        )

    def render_batch(
        self,
        published: PublishedVersion,
        options: SendOptions,
        items: Sequence[tuple[Recipient, Delivery]],
        *,
        timeout: float,
        write: Callable[[Rendering], int],
    ) -> int:
        """Render every recipient (run it on a worker thread: it is CPU-bound); return
        how many failed.

        `write` takes each result as it comes and says how many bytes of the response it
        takes: the gRPC layer writes it into the response there and then, and counts
        exactly. Results are not kept here, so each message's strings are freed as soon
        as they are written.
        """
        deadline = time.monotonic() + timeout
        sender = self.sender(options, published.postal_address)
        renderer = self.renderer(options)
        size = done = failed = 0
        mime = options.mime
        outcomes = renderer.render_batch(published.compiled, sender, items)
        for (recipient, _), outcome in zip(items, outcomes, strict=True):
            if not mime and type(outcome) is RenderedEmail:
                result = Rendering(outcome.send_id, outcome)
            else:
                result = self._result(outcome, sender, recipient, mime)
                failed += bool(result.code)
            done += 1
            size += write(result)
            if size > self.max_response_bytes:
                raise ResourceExhausted(
                    f"the rendered messages of the first {done} of {len(items)}"
                    f" recipients would be over the {self.max_response_bytes} byte response"
                    " limit; send fewer recipients per call"
                )
            if time.monotonic() > deadline:
                raise ResourceExhausted(
                    f"rendering took longer than {timeout:g}s after {done} of"
                    f" {len(items)} recipients; send fewer recipients per call"
                )
        if failed:
            log.info(
                "batch of %s v%s: %d of %d recipients failed",
                published.compiled.name,
                published.compiled.digest[:12],
                failed,
                done,
            )
        return failed

    def render_one(
        self,
        compiled: CompiledTemplate,
        postal_address: str,
        options: SendOptions,
        recipient: Recipient,
        delivery: Delivery,
    ) -> Rendering:
        """A preview: one message; a failure comes back as the result's error."""
        sender = self.sender(options, postal_address)
        if not options.track and "unsubscribe" not in delivery.links:
            # An untracked preview has no signed unsubscribe URL; show where it would go.
            links = {**delivery.links, "unsubscribe": f"{self.base_url}/u/preview"}
            delivery = replace(delivery, links=links)
        try:
            rendered: RenderedEmail | RenderFailure = self.renderer(options, preview=True).render(
                compiled, recipient, delivery, sender
            )
        except RenderError as error:
            rendered = RenderFailure(recipient.profile_id, delivery.send_id, error)
        return self._result(rendered, sender, recipient, options.mime)

    @staticmethod
    def _result(
        outcome: RenderedEmail | RenderFailure, sender: Sender, recipient: Recipient, mime: bool
    ) -> Rendering:
        if isinstance(outcome, RenderFailure):
            return Rendering(
                outcome.send_id, error=str(outcome.error), code=failure_code(outcome.error)
            )
        if not mime:
            return Rendering(outcome.send_id, outcome)
        try:
            message = to_mime(outcome, sender, recipient.email)
            return Rendering(outcome.send_id, outcome, message.as_bytes())
        except (ValueError, TypeError, IndexError, email.errors.MessageError) as error:
            return Rendering(outcome.send_id, error=f"MIME: {error}", code="mime")

"""One run of the demo on a started platform: each step with its progress bar."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from mailwright.common.v1 import event_pb2
from mailwright.ingest.v1 import ingest_pb2
from mailwright.runtime.server import Platform

if TYPE_CHECKING:
    from mailwright_profile.predict.service import Training

from . import engagement, load, report, workspace
from .generate import DemoShop
from .workspace import PARENT, WORKSPACE


def _progress(console: Console, *extra: Any) -> Progress:
    return Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        MofNCompleteColumn(),
        *extra,
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


class Demo:
    """One run of the demo on a started platform."""

    def __init__(self, platform: Platform, shop: DemoShop, outbox: Path, console: Console) -> None:
        self.platform = platform
        self.shop = shop
        self.outbox = outbox
        self.console = console
        self.clients = platform.clients()
        assert platform.runtime is not None
        self.bus = platform.runtime.bus

    async def run(self) -> report.DemoReport:
        console, clients = self.console, self.clients
        definitions = await workspace.prepare_ingest(clients)
        console.print(f"taxonomy: {definitions} event definitions applied to {PARENT}")
        suppressed = await workspace.suppress(clients, self.shop.customers)
        console.print(f"suppressions: {suppressed} earlier unsubscribes")
        loaded_at = await self._load()
        training = await self._train(loaded_at)
        segments = await self._segments()
        # Sizes before the campaign: its sends, opens and clicks move people between
        # engagement segments afterwards.
        sizes = await workspace.segment_sizes(clients, segments)
        templates = await workspace.publish_templates(clients)
        console.print(f"templates: {', '.join(t.rsplit('/', 1)[-1] for t in templates)}")
        journeys = await workspace.create_journeys(clients)
        console.print(f"journeys: {', '.join(j.rsplit('/', 1)[-1] for j in journeys)} (active)")
        campaign = await self._campaign()
        await self._drain("email events")
        chosen = await self._engage(campaign.name)
        await self._live_shoppers()
        found = await report.gather(
            clients,
            segments=sizes,
            campaign=campaign.name,
            journeys=journeys,
            messages=chosen.messages,
            models=[outcome.scorer for outcome in training.trained],
            scores=training.scores.traits,
        )
        report.show(console, found)
        return found

    async def _load(self) -> datetime:
        """Load the history and wait until it is digested; returns the moment it was
        placed before (every event lies whole seconds before it)."""
        now = datetime.now(UTC).replace(microsecond=0)
        started = time.monotonic()
        with _progress(self.console, TextColumn("{task.fields[events]:>9,} events")) as bar:
            task = bar.add_task("loading history", total=len(self.shop.customers), events=0)
            sent = 0

            def advance(customers: int, events: int) -> None:
                nonlocal sent
                sent += events
                bar.update(task, advance=customers, events=sent)

            counts = await load.ingest(self.clients, PARENT, load.batches(self.shop, now), advance)
        took = time.monotonic() - started
        self.console.print(
            f"ingest: {counts.accepted:,} accepted, {counts.duplicate:,} duplicate,"
            f" {counts.rejected:,} rejected in {took:.0f} s ({counts.sent / took:,.0f} events/s)"
        )
        if counts.rejected:
            self.console.print(f"[yellow]first rejection:[/] {counts.first_rejection}")
        ingested = time.monotonic() - started
        caught_up = await self._drain("profiles and segments")
        took = time.monotonic() - started
        rate = counts.accepted / max(took, 1e-3)
        groups = ", ".join(
            f"{group} {ingested + seconds:.0f} s" for group, seconds in sorted(caught_up.items())
        )
        self.console.print(
            f"up to date {took:.0f} s after the first event ({rate:,.0f} events/s end to end);"
            f" each consumer group caught up after: {groups}"
        )
        return now

    async def _train(self, as_of: datetime) -> Training:
        """What the nightly `mailwright predict train` job does, once the history is in:
        train the scorers (`workspace.SCORERS`) on the profile service's history and score
        every profile, so that `churn_risk` and the other scores are there when the
        segments that use them are computed. The training is `--as-of` the moment the
        history was placed before, so it sees the same history on every run however long
        the load took; then the segment service digests the score changes."""
        from mailwright_profile.app import ProfileApp

        profile = next(app for app in self.platform.apps if isinstance(app, ProfileApp))
        started = time.monotonic()
        with _progress(self.console) as bar:
            task = bar.add_task("training scorers", total=None)

            def advance(stage: str, done: int, total: int) -> None:
                bar.update(task, description=stage, completed=done, total=total or None)

            training = await profile.train_models(
                WORKSPACE, as_of, workspace.SCORERS, progress=advance
            )
        took = time.monotonic() - started
        scores = training.scores
        self.console.print(
            f"predict: trained {len(training.trained)} scorers in {took:.0f} s"
            f" ({', '.join(o.scorer for o in training.trained)}), reading the history and"
            f" scoring included; {scores.scored:,} of {scores.profiles:,} profiles scored"
        )
        for outcome in training.outcomes:
            if outcome.version is None:
                self.console.print(f"[yellow]not trained:[/] {outcome.scorer}: {outcome.error}")
        await self._drain("scores")
        return training

    async def _drain(self, what: str) -> dict[str, float]:
        first = await load.backlog(self.bus)
        with _progress(self.console) as bar:
            task = bar.add_task(f"digesting {what}", total=max(first, 1))

            def advance(left: int) -> None:
                total = max(bar.tasks[0].total or 0, left)
                bar.update(task, total=total, completed=total - left)

            return await load.wait_for_consumers(self.bus, advance)

    async def _segments(self) -> list[str]:
        with _progress(self.console) as bar:
            task = bar.add_task("computing segments", total=len(workspace.segment_library()))

            def advance(name: str, done: int, total: int) -> None:
                label = f"segment {name}" if name else "computing segments"
                bar.update(task, completed=done, total=total, description=label)

            names = await workspace.create_segments(self.clients, advance)
        await self._drain("segment changes")
        return names

    async def _campaign(self) -> workspace.CampaignRun:
        with _progress(self.console) as bar:
            task = bar.add_task("sending weekend-sale", total=None)

            def advance(_: str, done: int, total: int) -> None:
                bar.update(task, completed=done, total=total or None)

            return await workspace.send_campaign(self.clients, advance)

    async def _engage(self, campaign: str) -> engagement.Engagement:
        edge = self.platform.settings.effective_public_base_url
        messages = engagement.outbox_messages(self.outbox, edge)
        chosen = engagement.choose(self.shop.seed, messages)
        with _progress(self.console) as bar:
            task = bar.add_task(
                "readers open and click", total=len(chosen.opened) + len(chosen.clicked)
            )
            await engagement.engage(chosen, lambda: bar.advance(task))
        await self._orders(chosen.buyers)
        await self._await_engagement(campaign, len(chosen.opened), len(chosen.clicked))
        return chosen

    async def _orders(self, buyers: list[str]) -> None:
        """Some clickers buy what they clicked: an order now, attributed to the email."""
        by_email = {c.email: c for c in self.shop.customers}
        products = self.shop.products
        events = []
        for n, address in enumerate(sorted(buyers)):
            customer = by_email.get(address)
            if customer is None:
                continue
            product = products[n % len(products)]
            event = event_pb2.Event(
                type=event_pb2.EVENT_TYPE_TRACK,
                event="Order Completed",
                user_id=customer.user_id,
                message_id=f"demo-sale-order-{customer.user_id}",
            )
            event.timestamp.FromDatetime(datetime.now(UTC))
            event.properties.update(
                {
                    "order_id": f"sale-{customer.user_id}",
                    "revenue": str(product.price),
                    "currency": "EUR",
                    "products": [{"product_id": product.product_id, "quantity": 1}],
                }
            )
            events.append(event)
        if events:
            await self.clients.ingest.IngestBatch(
                ingest_pb2.IngestBatchRequest(parent=PARENT, events=events)
            )

    async def _await_engagement(self, campaign: str, opens: int, clicks: int) -> None:
        """Until delivery has counted every simulated open and click (or 60 s passed)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            total, _, _ = await report.campaign_rows(self.clients, campaign)
            if total.opens >= opens and total.clicks >= clicks:
                break
            await asyncio.sleep(0.25)
        await self._drain("opens, clicks and orders")

    async def _live_shoppers(self) -> None:
        """Shoppers on the site right now, through the HTTP edge with a write key: their
        checkouts enter the cart-abandonment journey (its first wait is an hour)."""
        key = await self.clients.ingest.CreateWriteKey(
            ingest_pb2.CreateWriteKeyRequest(
                parent=PARENT, display_name="demo website", request_id="demo-write-key"
            )
        )
        shoppers = engagement.live_shoppers(self.shop.customers)
        body = engagement.checkout_batch(shoppers, self.shop.products)
        edge = self.platform.settings.effective_public_base_url
        answer = await engagement.post_batch(edge, key.write_key.key, body)
        self.console.print(
            f"live shoppers: {len(shoppers)} started a checkout through the HTTP edge"
            f" ({answer.get('accepted', 0)} events accepted)"
        )
        await self._drain("live checkouts")

    async def close(self) -> None:
        await self.clients.close()

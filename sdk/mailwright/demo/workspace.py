"""Setting the demo workspace up through the public gRPC APIs.

The taxonomy (the default one), an ingest policy that takes a year of history, the
case-study segments of the segment library, the templates (Jinja2 and Mailchimp merge
tags, with a dynamic content block), the earlier unsubscribes, the weekend-sale campaign
(an A/B test on the subject and a holdout) and the journeys delivery ships as examples.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import grpc

from mailwright.delivery.v1 import delivery_pb2 as dpb
from mailwright.ingest.v1 import ingest_pb2
from mailwright.render.v1 import render_pb2 as rpb
from mailwright.rules.library import SegmentDefinition, builtin_segments
from mailwright.runtime.clients import Clients
from mailwright.segment.v1 import segment_pb2 as spb
from mailwright.taxonomy import default_taxonomy

from .generate import Customer

WORKSPACE = "demo"
PARENT = f"workspaces/{WORKSPACE}"
SENDER = dpb.Sender(from_address="news@shop.example", from_name="Nordlicht Shop")
POSTAL_ADDRESS = "Nordlicht Shop GmbH\nKastanienallee 12\n10435 Berlin"
CAMPAIGN_ID = "weekend-sale"
CAMPAIGN_AUDIENCE = ("loyal-buyers", "repeat-buyers", "casual-browsers", "browse-abandoners")
CAMPAIGN_EXCLUDED = ("inactive",)
HOLDOUT_FRACTION = 0.1
JOURNEYS = ("cart-abandonment", "win-back")
# The built-in scorers the demo trains: all but `clv`. The history lies whole seconds
# before the moment of loading, and CLV counts purchase days by UTC calendar day, so its
# fit moves with the time of day the demo runs (on this shop's spend the Gamma-Gamma fit
# converges at some hours and not at others), and `high-value-customers` with it.
SCORERS = ("churn", "propensity", "send-time", "recommend")

R = TypeVar("R")
T = TypeVar("T")
Progress = Callable[[str, int, int], None]
"""Called with (what, done, total) as a step advances."""


async def prepare_ingest(clients: Clients) -> int:
    """Apply the default taxonomy and widen the policy to a year of history.

    Returns the number of event definitions applied."""
    from mailwright_ingest.convert import spec_to_proto

    document = default_taxonomy()
    reply = await clients.ingest.ApplyTaxonomy(
        ingest_pb2.ApplyTaxonomyRequest(
            parent=PARENT,
            definitions=[spec_to_proto(spec) for spec in document.events],
            request_id="demo-taxonomy",
        )
    )
    policy = (
        await clients.ingest.GetIngestPolicy(
            ingest_pb2.GetIngestPolicyRequest(name=f"{PARENT}/ingestPolicy")
        )
    ).policy
    # The loader is an internal tool with a service token, but say so: no rate limit.
    policy.rate_limit_per_second = 0
    await clients.ingest.UpdateIngestPolicy(
        ingest_pb2.UpdateIngestPolicyRequest(policy=policy, request_id="demo-policy")
    )
    return len(reply.definitions)


async def patiently(call: Callable[[R], Awaitable[T]], request: R, attempts: int = 8) -> T:
    """`call(request)`, again when it runs out of time or the service is busy: on a
    loaded machine, creating and recomputing segments over a year of history can take
    longer than the clients' 15 s deadline. Safe for mutations: they carry a request id,
    so a retry gets the first call's response (ABORTED while that call is still at work)."""
    for attempt in range(1, attempts + 1):
        try:
            return await call(request)
        except grpc.aio.AioRpcError as error:
            retry = error.code() in (
                grpc.StatusCode.DEADLINE_EXCEEDED,
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.ABORTED,
            )
            if not retry or attempt == attempts:
                raise
            await asyncio.sleep(min(2.0 * attempt, 10.0))
    raise AssertionError("unreachable")


def segment_library() -> list[SegmentDefinition]:
    """The case-study segments shipped with the SDK, in the order they can be created."""
    return list(builtin_segments())


async def create_segments(clients: Clients, progress: Progress) -> list[str]:
    """Create every library segment and recompute it; returns their names."""
    definitions = segment_library()
    names = []
    for definition in definitions:
        made = await patiently(
            clients.segment.CreateSegment,
            spb.CreateSegmentRequest(
                parent=PARENT,
                segment_id=definition.id,
                segment=spb.Segment(
                    display_name=definition.name,
                    description=definition.description,
                    rule_text=definition.text,
                ),
                request_id=f"demo-segment-{definition.id}",
            ),
        )
        names.append(made.segment.name)
    for done, name in enumerate(names):
        progress(name.rsplit("/", 1)[-1], done, len(names))
        request = spb.RecomputeSegmentRequest(name=name, request_id=f"demo-recompute-{name}")
        job = (await patiently(clients.segment.RecomputeSegment, request)).job
        while job.state not in (spb.JOB_STATE_SUCCEEDED, spb.JOB_STATE_FAILED):
            await asyncio.sleep(0.1)
            asked = spb.GetRecomputeJobRequest(name=job.name)
            job = (await patiently(clients.segment.GetRecomputeJob, asked)).job
        if job.state == spb.JOB_STATE_FAILED:
            raise RuntimeError(f"recomputing {name} failed: {job.error}")
    progress("", len(names), len(names))
    return names


async def segment_sizes(clients: Clients, names: Sequence[str]) -> dict[str, int]:
    sizes = {}
    for name in names:
        asked = spb.ListMembersRequest(parent=name, page_size=1)
        reply = await patiently(clients.segment.ListMembers, asked)
        sizes[name.rsplit("/", 1)[-1]] = reply.total_size
    return sizes


# ----------------------------------------------------------------------------- templates
_FOOTER_JINJA = (
    '<p style="font-size:12px;color:#666">You get this because you shop with us. '
    '<a href="{{ unsubscribe_url }}">Unsubscribe</a><br>{{ sender.address }}</p>'
)
_FOOTER_MERGE = (
    '<p style="font-size:12px;color:#666"><a href="*|UNSUB|*">Unsubscribe</a> · '
    "*|LIST:ADDRESSLINE|*</p>"
)


def _text(key: str, template: str) -> rpb.TextVariant:
    return rpb.TextVariant(key=key, template=template)


def templates() -> dict[str, rpb.TemplateContent]:
    """Every template of the demo by id: the campaign's in Jinja2 with a dynamic block, the
    journeys' in Mailchimp merge tags (and one mixing both)."""
    marketing = rpb.TEMPLATE_CATEGORY_MARKETING
    hero = rpb.ContentBlock(
        name="hero",
        default_content=(
            "<h1>Weekend sale: 20% off everything</h1>"
            '<p><a href="https://shop.example/sale">Shop the sale</a></p>'
        ),
        variants=[
            rpb.BlockVariant(
                key="vip",
                segment="loyal-buyers",
                content=(
                    "<h1>{{ first_name|default('Friend') }}, your VIP early access is open</h1>"
                    '<p><a href="https://shop.example/sale?vip=1">Shop before everyone</a></p>'
                ),
            ),
            rpb.BlockVariant(
                key="france",
                rule_text='trait country = "FR"',
                content=(
                    "<h1>Les soldes du week-end : -20 %</h1>"
                    '<p><a href="https://shop.example/fr/soldes">Voir les soldes</a></p>'
                ),
            ),
        ],
    )
    sale = rpb.TemplateContent(
        subjects=[
            _text("a", "Weekend sale: 20% off, {{ first_name|default('friend') }}"),
            _text("b", "{{ first_name|default('Hello') }}, this weekend only: 20% off"),
        ],
        preheaders=[_text("p", "New in {{ traits.favourite_category|default('the shop') }}")],
        body=(
            "<html><body><p>Hi {{ first_name|default('there') }},</p>"
            '{% content_block "hero" %}'
            '<p>Browse <a href="https://shop.example/new">what is new</a> or '
            '<a href="https://shop.example/bestsellers">the bestsellers</a>.</p>'
            f"{_FOOTER_JINJA}</body></html>"
        ),
        blocks=[hero],
        category=marketing,
        postal_address=POSTAL_ADDRESS,
    )
    cart_body = (
        "<html><body><p>*|IF:FNAME|*Hi *|FNAME|*,*|ELSE:|*Hello,*|END:IF|*</p>"
        "<p>Your cart is still waiting for you.</p>"
        '<p><a href="https://shop.example/cart">Back to my cart</a></p>'
        f"{_FOOTER_MERGE}</body></html>"
    )
    return {
        "weekend-sale": sale,
        "cart-reminder": rpb.TemplateContent(
            subjects=[_text("a", "*|FNAME|*, you left something behind")],
            body=cart_body,
            category=marketing,
            postal_address=POSTAL_ADDRESS,
        ),
        "cart-incentive": rpb.TemplateContent(
            subjects=[
                _text("a", "Still thinking it over, *|FNAME|*?"),
                _text("discount", "10% off your cart, *|FNAME|* — today only"),
            ],
            body=cart_body.replace("still waiting", "still waiting, now with 10% off"),
            category=marketing,
            postal_address=POSTAL_ADDRESS,
        ),
        "win-back-miss-you": rpb.TemplateContent(
            subjects=[_text("a", "We miss you, *|FNAME|*")],
            body=(
                "<html><body><p>Hello *|FNAME|*,</p><p>It has been a while. "
                '<a href="https://shop.example/new">See what is new</a>.</p>'
                "{% if traits.city %}<p>Free delivery to {{ traits.city }} this week.</p>"
                f"{{% endif %}}{_FOOTER_MERGE}</body></html>"
            ),
            category=marketing,
            postal_address=POSTAL_ADDRESS,
        ),
        "win-back-offer": rpb.TemplateContent(
            subjects=[_text("a", "A last offer for you, *|FNAME|*: 15% off")],
            body=(
                "<html><body><p>*|IF:FNAME|*Dear *|FNAME|*,*|END:IF|*</p>"
                '<p><a href="https://shop.example/comeback">15% off your next order</a></p>'
                f"{_FOOTER_MERGE}</body></html>"
            ),
            category=marketing,
            postal_address=POSTAL_ADDRESS,
        ),
    }


async def publish_templates(clients: Clients) -> list[str]:
    names = []
    for template_id, content in templates().items():
        made = await clients.render.CreateTemplate(
            rpb.CreateTemplateRequest(
                parent=PARENT,
                template_id=template_id,
                content=content,
                request_id=f"demo-template-{template_id}",
            )
        )
        await clients.render.PublishTemplate(
            rpb.PublishTemplateRequest(
                name=made.version.name, request_id=f"demo-publish-{template_id}"
            )
        )
        names.append(made.template.name)
    return names


# ----------------------------------------------------------------------------- delivery
async def suppress(clients: Clients, customers: Sequence[Customer]) -> int:
    """The customers who unsubscribed from the newsletter before: suppressed."""
    leaving = [customer for customer in customers if not customer.subscribed]
    slots = asyncio.Semaphore(16)

    async def add(customer: Customer) -> None:
        async with slots:
            await clients.delivery.AddSuppression(
                dpb.AddSuppressionRequest(
                    parent=PARENT,
                    suppression=dpb.Suppression(
                        email=customer.email,
                        reason=dpb.SUPPRESSION_REASON_UNSUBSCRIBED,
                        note="unsubscribed before the demo",
                    ),
                    request_id=f"demo-suppress-{customer.user_id}",
                )
            )

    await asyncio.gather(*(add(customer) for customer in leaving))
    return len(leaving)


async def create_journeys(clients: Clients) -> list[str]:
    """The cart-abandonment and win-back journeys shipped with delivery, activated."""
    from mailwright_delivery import yamlfile
    from mailwright_delivery.library import journey_files

    files = {path.stem: path for path in journey_files()}
    names = []
    for journey_id in JOURNEYS:
        path: Path = files[journey_id]
        ident, journey = yamlfile.load(path, dpb.Journey)
        made = await clients.delivery.CreateJourney(
            dpb.CreateJourneyRequest(
                parent=PARENT,
                journey_id=ident,
                journey=journey,
                request_id=f"demo-journey-{ident}",
            )
        )
        await clients.delivery.ActivateJourney(dpb.ActivateJourneyRequest(name=made.journey.name))
        names.append(made.journey.name)
    return names


def campaign() -> dpb.Campaign:
    return dpb.Campaign(
        display_name="Weekend sale",
        audience=dpb.Audience(
            include_segments=list(CAMPAIGN_AUDIENCE), exclude_segments=list(CAMPAIGN_EXCLUDED)
        ),
        template="weekend-sale",
        sender=SENDER,
        category=dpb.CATEGORY_MARKETING,
        schedule=dpb.Schedule(now=True),
        experiment=dpb.Experiment(
            kind=dpb.EXPERIMENT_KIND_SPLIT,
            variants=[
                dpb.ExperimentVariant(key="a", subject_variant="a"),
                dpb.ExperimentVariant(key="b", subject_variant="b"),
            ],
            holdout_fraction=HOLDOUT_FRACTION,
        ),
    )


@dataclass(frozen=True)
class CampaignRun:
    name: str
    audience_size: int


async def send_campaign(clients: Clients, progress: Progress) -> CampaignRun:
    """Create and schedule the campaign; follow it until every send is settled."""
    made = await clients.delivery.CreateCampaign(
        dpb.CreateCampaignRequest(
            parent=PARENT,
            campaign_id=CAMPAIGN_ID,
            campaign=campaign(),
            request_id="demo-campaign",
        )
    )
    name = made.campaign.name
    await patiently(
        clients.delivery.ScheduleCampaign,
        dpb.ScheduleCampaignRequest(name=name, request_id="demo-campaign-schedule"),
    )
    while True:
        found = (await clients.delivery.GetCampaign(dpb.GetCampaignRequest(name=name))).campaign
        done, total = found.progress.done, found.progress.total
        progress("weekend-sale", int(done), int(total or found.audience_size))
        if found.state in (dpb.CAMPAIGN_STATE_SENT, dpb.CAMPAIGN_STATE_CANCELLED):
            return CampaignRun(name, found.audience_size)
        await asyncio.sleep(0.2)

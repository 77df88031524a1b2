"""Who a message is for, what send it belongs to, who sends it: and what templates see.

`Recipient`, `Delivery` and `Sender` are the render inputs. `template_namespace` turns
them into the variables a template reads:

- every trait at the top level (`{{ first_name }}`), and all of them in `traits`;
- `profile` (id, email, locale, timezone, segments), `email`;
- `contact`, the profile seen through HubSpot property names (`{{ contact.firstname }}`);
- `send` (id, campaign, variant, links), `content` (content sources such as
  recommendations), `sender` (name, email, company, address) and HubSpot's
  `site_settings`;
- `unsubscribe_url` (also `unsubscribe_link`), `view_in_browser_url`,
  `preferences_url`, and the rendered `subject` and `preheader`.

Platform names win over traits of the same name, and traits whose names start with an
underscore are only reachable through `traits[...]`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeVar

from mailwright_render.engine import GLOBAL_NAMES

DEFAULT_HUBSPOT_PROPERTIES: Mapping[str, str] = MappingProxyType(
    {
        "firstname": "first_name",
        "lastname": "last_name",
        "email": "email",
        "phone": "phone",
        "mobilephone": "mobile_phone",
        "company": "company",
        "jobtitle": "job_title",
        "website": "website",
        "address": "address",
        "city": "city",
        "state": "state",
        "zip": "postal_code",
        "country": "country",
        "lifecyclestage": "lifecycle_stage",
        "hs_language": "language",
    }
)

PLATFORM_NAMES = frozenset(
    {"profile", "traits", "email", "contact", "send", "content", "sender", "site_settings",
     "unsubscribe_url", "unsubscribe_link", "view_in_browser_url", "preferences_url",
     "subject", "preheader"}
)  # fmt: skip
RESERVED_NAMES = PLATFORM_NAMES | GLOBAL_NAMES


_T = TypeVar("_T")


def frozen(cls: type[_T], **fields: object) -> _T:
    """An instance of a frozen dataclass (no slots) from all its fields, without its
    `__init__`'s one `object.__setattr__` per field nor its `__post_init__`: for values
    built once per recipient, whose fields the caller has checked."""
    instance = object.__new__(cls)
    instance.__dict__.update(fields)
    return instance


def _empty() -> Mapping[str, object]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Recipient:
    """One person a message is rendered for."""

    profile_id: str
    email: str
    traits: Mapping[str, object] = field(default_factory=_empty)
    segments: frozenset[str] = frozenset()
    locale: str | None = None
    timezone: str | None = None
    content: Mapping[str, object] = field(default_factory=_empty)

    def __post_init__(self) -> None:
        if not self.profile_id:
            raise ValueError("recipient.profile_id is required")
        if type(self.traits) is not dict and not isinstance(self.traits, Mapping):
            raise ValueError("recipient.traits must be a mapping")

    @classmethod
    def decoded(
        cls,
        *,
        profile_id: str,
        email: str,
        traits: dict[str, object],
        segments: frozenset[str],
        locale: str | None,
        timezone: str | None,
        content: Mapping[str, object],
    ) -> Recipient:
        """A recipient from a decoder that has checked what `__post_init__` checks (a
        profile id; traits as a dict). Built without the frozen dataclass's one
        `object.__setattr__` per field: this runs for every recipient of a batch."""
        if not profile_id or type(traits) is not dict:
            raise ValueError("recipient.profile_id and dict traits are required")
        return frozen(
            cls,
            profile_id=profile_id,
            email=email,
            traits=traits,
            segments=segments,
            locale=locale,
            timezone=timezone,
            content=content,
        )


@dataclass(frozen=True)
class Delivery:
    """The send a message belongs to: its id is what tracking tokens are signed for."""

    workspace: str
    send_id: str
    campaign: Mapping[str, object] = field(default_factory=_empty)
    links: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    subject_variant: str | None = None
    preheader_variant: str | None = None

    def __post_init__(self) -> None:
        if not self.workspace:
            raise ValueError("delivery.workspace is required")
        if not self.send_id:
            raise ValueError("delivery.send_id is required")

    @classmethod
    def decoded(
        cls,
        *,
        workspace: str,
        send_id: str,
        campaign: Mapping[str, object],
        links: Mapping[str, str],
        subject_variant: str | None,
        preheader_variant: str | None,
    ) -> Delivery:
        """A delivery from a decoder, built as `Recipient.decoded` is."""
        if not workspace or not send_id:
            raise ValueError("delivery.workspace and delivery.send_id are required")
        return frozen(
            cls,
            workspace=workspace,
            send_id=send_id,
            campaign=campaign,
            links=links,
            subject_variant=subject_variant,
            preheader_variant=preheader_variant,
        )


@dataclass(frozen=True)
class Sender:
    """Who a message is from, with the postal address marketing mail must show."""

    name: str
    email: str
    postal_address: str = ""
    company: str = ""
    reply_to: str | None = None

    @property
    def postal_address_line(self) -> str:
        return ", ".join(line.strip() for line in self.postal_address.splitlines() if line.strip())


class HubSpotContact(Mapping[str, object]):
    """A profile read with HubSpot property names; unmapped names are read as traits."""

    __slots__ = ("_email", "_properties", "_traits")

    def __init__(
        self, traits: Mapping[str, object], email: str, properties: Mapping[str, str]
    ) -> None:
        self._traits = traits
        self._email = email
        self._properties = properties

    def __getitem__(self, name: str) -> object:
        if name == "email":
            return self._email
        trait = self._properties.get(name, name)
        if trait in self._traits:
            return self._traits[trait]
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        reverse = {trait: name for name, trait in self._properties.items()}
        yield "email"
        for trait in self._traits:
            name = reverse.get(trait, trait)
            if name != "email":
                yield name

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return "<contact>"


@dataclass(frozen=True)
class Links:
    """The per-recipient URLs the platform supplies."""

    unsubscribe: str = ""
    view_in_browser: str = ""
    preferences: str = ""


def sender_namespace(sender: Sender) -> dict[str, object]:
    return {
        "name": sender.name,
        "email": sender.email,
        "company": sender.company,
        "address": sender.postal_address,
        "address_line": sender.postal_address_line,
    }


def site_settings(sender: Sender) -> dict[str, object]:
    lines = [line.strip() for line in sender.postal_address.splitlines() if line.strip()]
    return {
        "company_name": sender.company or sender.name,
        "company_street_address_1": lines[0] if lines else "",
        "company_street_address_2": " ".join(lines[1:2]),
        "company_city": " ".join(lines[2:]),
    }


def template_namespace(
    recipient: Recipient,
    delivery: Delivery,
    shared: Mapping[str, object],
    links: Links,
    hubspot_properties: Mapping[str, str],
) -> dict[str, object]:
    """The variables of one recipient's render. `shared` is built once per batch."""
    traits = recipient.traits
    namespace: dict[str, object] = {
        key: value
        for key, value in traits.items()
        if isinstance(key, str) and not key.startswith("_") and key not in RESERVED_NAMES
    }
    namespace.update(shared)
    namespace["traits"] = traits
    namespace["email"] = recipient.email
    namespace["profile"] = {
        "id": recipient.profile_id,
        "email": recipient.email,
        "locale": recipient.locale,
        "timezone": recipient.timezone,
        "segments": sorted(recipient.segments),
    }
    namespace["contact"] = HubSpotContact(traits, recipient.email, hubspot_properties)
    namespace["content"] = recipient.content
    namespace["send"] = {
        "id": delivery.send_id,
        "campaign": delivery.campaign,
        "variant": delivery.subject_variant,
        "links": delivery.links,
    }
    namespace["unsubscribe_url"] = links.unsubscribe
    namespace["unsubscribe_link"] = links.unsubscribe
    namespace["view_in_browser_url"] = links.view_in_browser
    namespace["preferences_url"] = links.preferences
    return namespace

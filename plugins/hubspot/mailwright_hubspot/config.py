"""The HubSpot connector's configuration, validated when the connector is opened.

Set fields as `MAILWRIGHT_CONNECTOR_HUBSPOT_<FIELD>`, as files in
`$MAILWRIGHT_SECRETS_DIR/hubspot/<field>`, or under `connectors: {hubspot: …}` in the
configuration file. `access_token` (a private app's token or an OAuth access token: the
source, the audience sync and the email provider) and `client_secret` (the app's client
secret, which signs webhooks) are secrets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from mailwright.connectors import ConfigProblem, ConnectorConfig, ConnectorConfigError, env_variable
from mailwright.runtime.settings import Duration

NAME = "hubspot"
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
PROPERTY_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
TRAIT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.]{0,99}$")

DEFAULT_PROPERTIES: Mapping[str, str] = {
    "first_name": "firstname",
    "last_name": "lastname",
    "phone": "phone",
    "company": "company",
    "city": "city",
    "country": "country",
    "lifecycle_stage": "lifecyclestage",
}

EMAIL_ENDPOINTS: Mapping[str, str] = {
    "marketing": "/marketing/v4/email/single-send",
    "transactional": "/marketing/v3/transactional/single-email/send",
}


def _https_or_local(value: str, field: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL")
    if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS:
        raise ValueError(f"must be https ({field} carries credentials or is signed)")
    return value.rstrip("/")


class HubSpotConfig(ConnectorConfig):
    """One HubSpot account: credentials, what to sync, how fast."""

    access_token: SecretStr | None = None
    """Private app access token (or OAuth access token) with `crm.objects.contacts.read`
    and `.write`, `crm.lists.read` and `.write`, and `marketing-email` to send."""
    client_secret: SecretStr | None = None
    """The app's client secret: it signs webhook requests (v1, v2 and v3)."""
    portal_id: int | None = Field(default=None, ge=1)
    """The HubSpot account (hub) id; webhook events of other accounts are refused."""
    base_url: str = "https://api.hubapi.com"
    public_url: str | None = None
    """The base URL HubSpot calls webhooks at (`https://mw.example.com`), when Mailwright
    sits behind a proxy that changes scheme or host: v2 and v3 signatures cover the URL."""
    signature_window: Duration = timedelta(minutes=5)
    """How old (or early) a v3 signature's timestamp may be."""
    allow_legacy_signatures: bool = True
    """Accept v1/v2 signatures (no timestamp) on requests that carry no v3 signature."""

    properties: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_PROPERTIES))
    """Profile trait → HubSpot contact property, both ways: what the source reads into
    traits and the audience sync writes from them (`email` is always included)."""
    page_size: int = Field(default=100, ge=1, le=100)
    """Contacts per page of the list endpoint (HubSpot's maximum is 100)."""
    search_page_size: int = Field(default=200, ge=1, le=200)
    """Contacts per page of the search endpoint (HubSpot's maximum is 200)."""
    search_max_results: int = Field(default=10_000, ge=10, le=10_000)
    """HubSpot returns at most 10,000 results for one search (see `source`)."""
    search_overlap: Duration = timedelta(seconds=10)
    """How far before the newest contact seen the next run starts: the search index
    trails edits by a few seconds."""
    list_prefix: str = Field(default="Mailwright: ", max_length=40)
    """Prefix of the static (MANUAL) lists that mirror segments."""

    email_id: int | None = Field(default=None, ge=1)
    """The HubSpot marketing email used as the template of single sends (its content id);
    its body should be `{{ custom.mailwright_html }}`."""
    email_endpoint: Literal["marketing", "transactional"] = "marketing"
    """`marketing`: the marketing single-send API (`/marketing/v4/email/single-send`);
    `transactional`: the transactional add-on's `/marketing/v3/transactional/single-email/send`."""
    email_rate_per_second: float = Field(default=5.0, gt=0, le=100)

    requests_per_ten_seconds: int = Field(default=100, ge=1, le=1900)
    """The account's burst limit (100 per 10 s for private apps on most tiers, 190 on
    Professional and Enterprise): requests are spaced to stay under it."""
    search_per_second: float = Field(default=5.0, gt=0, le=50)
    timeout: Duration = timedelta(seconds=30)
    retries: int = Field(default=6, ge=1, le=20)
    max_retry_wait: Duration = timedelta(minutes=2)

    @field_validator("base_url")
    @classmethod
    def _base(cls, value: str) -> str:
        return _https_or_local(value, "the access token")

    @field_validator("public_url")
    @classmethod
    def _public(cls, value: str | None) -> str | None:
        return None if value is None else _https_or_local(value, "the URL")

    @field_validator("properties")
    @classmethod
    def _properties(cls, value: dict[str, str]) -> dict[str, str]:
        for trait, prop in value.items():
            if not TRAIT_NAME.match(trait):
                raise ValueError(f"trait {trait!r} is not a trait name")
            if not PROPERTY_NAME.match(prop):
                raise ValueError(f"{prop!r} is not a HubSpot property name (lower case, _)")
        if len(set(value.values())) != len(value):
            raise ValueError("two traits map to the same property")
        return value

    @property
    def read_properties(self) -> list[str]:
        """Every property the source asks for."""
        wanted = ["email", "lastmodifieddate", "createdate", *self.properties.values()]
        return list(dict.fromkeys(wanted))

    def require(self, field: str, needed_by: str) -> SecretStr | int:
        """The value of `field`, or `ConnectorConfigError` naming it when it is not set."""
        value = getattr(self, field)
        if isinstance(value, SecretStr) and value.get_secret_value():
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        variable = env_variable(NAME, field)
        problem = ConfigProblem(field, "not set", f"required by the {needed_by}; set {variable}")
        raise ConnectorConfigError(NAME, [problem])

    def token(self, needed_by: str) -> str:
        secret = self.require("access_token", needed_by)
        assert isinstance(secret, SecretStr)
        return secret.get_secret_value()

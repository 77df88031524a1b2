"""The Salesforce connector's configuration, validated when the connector is opened.

Set fields as `MAILWRIGHT_CONNECTOR_SALESFORCE_<FIELD>`, as files in
`$MAILWRIGHT_SECRETS_DIR/salesforce/<field>` (a Kubernetes Secret), or under
`connectors: {salesforce: …}`. Secrets: `client_secret` (client credentials flow) and
`private_key` (the PEM key that signs JWT bearer assertions).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from mailwright.connectors import (
    ConfigProblem,
    ConnectorConfig,
    ConnectorConfigError,
    env_variable,
    field_error,
)
from mailwright.runtime.settings import Duration

NAME = "salesforce"
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}$")
TRAIT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.]{0,99}$")

CONTACT_FIELDS: Mapping[str, str] = {
    "Email": "email",
    "FirstName": "first_name",
    "LastName": "last_name",
    "Phone": "phone",
    "Title": "title",
    "MailingCity": "city",
    "MailingCountry": "country",
}
LEAD_FIELDS: Mapping[str, str] = {
    "Email": "email",
    "FirstName": "first_name",
    "LastName": "last_name",
    "Phone": "phone",
    "Title": "title",
    "Company": "company",
    "City": "city",
    "Country": "country",
    "Status": "lead_status",
}


def _fields(value: dict[str, str]) -> dict[str, str]:
    for field, trait in value.items():
        if not FIELD_NAME.match(field):
            raise ValueError(f"{field!r} is not a Salesforce field name")
        if not TRAIT_NAME.match(trait):
            raise ValueError(f"trait {trait!r} is not a trait name")
    if len(set(value.values())) != len(value):
        raise ValueError("two fields map to the same trait")
    return value


class SalesforceConfig(ConnectorConfig):
    """One Salesforce org: how to log in, what to read, how to write back."""

    login_url: str = "https://login.salesforce.com"
    """Where tokens come from (`/services/oauth2/token`): `https://test.salesforce.com` for
    sandboxes, or the org's My Domain URL (required by the client credentials flow). The
    JWT assertion's audience follows from it: `https://login.salesforce.com` for a
    production My Domain, `https://test.salesforce.com` for a sandbox one, as documented."""
    auth_flow: Literal["client_credentials", "jwt_bearer"] = "client_credentials"
    client_id: str | None = Field(default=None, max_length=256)
    """The connected app's consumer key."""
    client_secret: SecretStr | None = None
    """The connected app's consumer secret (client credentials flow)."""
    username: str | None = Field(default=None, max_length=256)
    """The user the JWT bearer flow acts as (`sub`)."""
    private_key: SecretStr | None = None
    """PEM RSA private key whose certificate is on the connected app (JWT bearer flow)."""
    api_version: str = Field(default="62.0", pattern=r"^[1-9][0-9]\.0$")

    contact_fields: dict[str, str] = Field(default_factory=lambda: dict(CONTACT_FIELDS))
    """Contact field → trait, read by the source and written by the sync."""
    lead_fields: dict[str, str] = Field(default_factory=lambda: dict(LEAD_FIELDS))
    page_size: int = Field(default=2000, ge=200, le=2000)
    """Records per query page (`Sforce-Query-Options: batchSize`; 200 to 2,000)."""

    external_id_field: str = Field(
        default="Mailwright_Id__c", pattern=r"^[A-Za-z][A-Za-z0-9_]*__c$"
    )
    """The Contact's external id field that holds the Mailwright profile id (unique)."""
    campaign_prefix: str = Field(default="Mailwright: ", max_length=40)
    composite_threshold: int = Field(default=1, ge=0, le=200)
    """Upserts of at most this many contacts use the single-record upsert."""
    bulk_threshold: int = Field(default=200, ge=1, le=100_000)
    """Upserts of more contacts than this use Bulk API 2.0; between the two, Composite
    sObject collections (200 records a request, `allOrNone: false`)."""
    bulk_poll_interval: Duration = timedelta(seconds=5)
    bulk_timeout: Duration = timedelta(minutes=30)

    api_usage_slow: float = Field(default=0.8, gt=0, le=1)
    """Above this share of the org's daily API requests (`Sforce-Limit-Info`), requests are
    spaced by `slow_interval`."""
    api_usage_stop: float = Field(default=0.95, gt=0, le=1)
    """At this share the connector stops (`RATE_LIMITED`) and leaves the rest to the org."""
    slow_interval: Duration = timedelta(seconds=1)
    timeout: Duration = timedelta(seconds=60)
    retries: int = Field(default=5, ge=1, le=20)
    max_retry_wait: Duration = timedelta(minutes=2)

    @field_validator("login_url")
    @classmethod
    def _login(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL")
        if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS:
            raise ValueError("must be https (it receives credentials)")
        return value.rstrip("/")

    @field_validator("contact_fields", "lead_fields")
    @classmethod
    def _field_map(cls, value: dict[str, str]) -> dict[str, str]:
        return _fields(value)

    @model_validator(mode="after")
    def _thresholds(self) -> SalesforceConfig:
        if self.api_usage_slow > self.api_usage_stop:
            raise field_error(SalesforceConfig, "api_usage_slow", "must not exceed api_usage_stop")
        if self.composite_threshold > self.bulk_threshold:
            raise field_error(
                SalesforceConfig, "composite_threshold", "must not exceed bulk_threshold"
            )
        return self

    def require(self, field: str, needed_by: str) -> str:
        value = getattr(self, field)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, str) and value:
            return value
        variable = env_variable(NAME, field)
        why = f"required by the {needed_by} ({self.auth_flow} flow); set {variable}"
        raise ConnectorConfigError(NAME, [ConfigProblem(field, "not set", why)])

    def fields_of(self, sobject: str) -> dict[str, str]:
        return self.contact_fields if sobject == "Contact" else self.lead_fields

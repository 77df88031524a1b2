"""OAuth 2.0 for Salesforce: client credentials, or a JWT bearer assertion signed RS256.

Both post a form to `<login_url>/services/oauth2/token`:

- client credentials: `grant_type=client_credentials`, `client_id`, `client_secret`
  (the connected app runs as its configured user; needs the org's My Domain URL);
- JWT bearer: `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` and `assertion`,
  a JWT signed RS256 with the app's private key carrying `iss` (consumer key), `sub`
  (username), `aud` (`https://login.salesforce.com`, `https://test.salesforce.com` for a
  sandbox, even when the token is asked of a My Domain; or an Experience Cloud site's
  URL) and `exp` (three minutes ahead).

The answer has `access_token` and `instance_url` (where the API lives). Refusals are
`{"error": "invalid_client" | "invalid_grant" | …, "error_description": …}` with 400 or
401: raised as `AUTH` with Salesforce's description.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import jwt

from mailwright.connectors import ErrorKind, ProviderError
from mailwright.connectors.http import Backoff, Fail, ProviderHttp, Verdict, body_text
from mailwright_salesforce.config import SalesforceConfig

TOKEN_PATH = "/services/oauth2/token"  # noqa: S105 (a path, not a secret)
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME = 180


@dataclass(frozen=True, repr=False)
class Token:
    access_token: str
    instance_url: str

    def __repr__(self) -> str:
        return f"Token(instance_url={self.instance_url!r})"


def oauth_error(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return body_text(response)
    if isinstance(body, Mapping) and isinstance(body.get("error"), str):
        return f"{body['error']}: {body.get('error_description', '')}"
    return body_text(response)


def oauth_verdict(response: httpx.Response) -> Verdict:
    if response.status_code in (400, 401, 403):
        detail = f"Salesforce refused the login: {oauth_error(response)}"
        return Fail(ProviderError(ErrorKind.AUTH, detail, code="oauth"))
    return None


def audience(login_url: str) -> str:
    """The JWT's `aud` for a token asked of `login_url`.

    Salesforce documents three audiences: `https://login.salesforce.com`,
    `https://test.salesforce.com` (sandboxes) and an Experience Cloud site's URL. A My
    Domain URL is where the token may be asked, never an audience: a production My
    Domain means login, a sandbox one (`acme--uat.sandbox.my.salesforce.com`, or the
    older `acme--uat.my.salesforce.com`) test. Any other URL (a site, a local fake) is
    its own audience.
    """
    host = (urlsplit(login_url).hostname or "").lower()
    if host == "test.salesforce.com" or host.endswith(".sandbox.my.salesforce.com"):
        return "https://test.salesforce.com"
    if host.endswith(".my.salesforce.com"):
        sandbox = "--" in host.split(".", 1)[0]
        return "https://test.salesforce.com" if sandbox else "https://login.salesforce.com"
    if host == "login.salesforce.com":
        return "https://login.salesforce.com"
    return login_url


def assertion(config: SalesforceConfig, now: float | None = None) -> str:
    """The signed JWT the bearer flow presents."""
    claims = {
        "iss": config.require("client_id", "JWT bearer login"),
        "sub": config.require("username", "JWT bearer login"),
        "aud": audience(config.login_url),
        "exp": int((now or time.time()) + ASSERTION_LIFETIME),
    }
    key = config.require("private_key", "JWT bearer login")
    try:
        return jwt.encode(claims, key, algorithm="RS256")
    except (ValueError, TypeError, jwt.PyJWTError) as error:
        raise ProviderError(
            ErrorKind.AUTH, f"private_key cannot sign RS256 ({type(error).__name__})"
        ) from None


class TokenSource:
    """Fetches (and refetches, when a session expires) the org's access token."""

    def __init__(self, config: SalesforceConfig, needed_by: str) -> None:
        self.config = config
        config.require("client_id", needed_by)
        if config.auth_flow == "client_credentials":
            config.require("client_secret", needed_by)
        else:
            config.require("username", needed_by)
            config.require("private_key", needed_by)
        self.http = ProviderHttp(
            "salesforce",
            config.login_url,
            timeout=config.timeout.total_seconds(),
            backoff=Backoff(attempts=config.retries),
            classify=oauth_verdict,
            describe=oauth_error,
            max_connections=2,
        )
        self.fetched = 0

    def form(self) -> dict[str, str]:
        if self.config.auth_flow == "client_credentials":
            return {
                "grant_type": "client_credentials",
                "client_id": self.config.require("client_id", "login"),
                "client_secret": self.config.require("client_secret", "login"),
            }
        return {"grant_type": JWT_GRANT, "assertion": assertion(self.config)}

    async def fetch(self) -> Token:
        response = await self.http.request(
            "POST",
            TOKEN_PATH,
            content=urlencode(self.form()).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        body: Any = self.http.decode(response)
        token = body.get("access_token") if isinstance(body, Mapping) else None
        instance = body.get("instance_url") if isinstance(body, Mapping) else None
        if not isinstance(token, str) or not isinstance(instance, str) or not instance:
            raise ProviderError(ErrorKind.AUTH, "Salesforce answered the login without a token")
        self.fetched += 1
        return Token(token, instance.rstrip("/"))

    async def aclose(self) -> None:
        await self.http.aclose()

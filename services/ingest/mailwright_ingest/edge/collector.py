"""`GET /c.js`: the browser collector script (`collector.js` beside this module).

Served with a strong ETag and an hour of caching, so a page loads it once and revalidates
cheaply; `async` on the script tag keeps it off the page's critical path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

MEDIA_TYPE = "application/javascript; charset=utf-8"


class Collector:
    def __init__(self) -> None:
        source = resources.files("mailwright_ingest.edge").joinpath("collector.js")
        self.script = source.read_bytes()
        self.etag = '"' + hashlib.sha256(self.script).hexdigest()[:32] + '"'

    def routes(self) -> Sequence[BaseRoute]:
        return [Route("/c.js", self.serve, methods=["GET"])]

    async def serve(self, request: Request) -> Response:
        headers = {
            "ETag": self.etag,
            "Cache-Control": "public, max-age=3600",
            "X-Content-Type-Options": "nosniff",
            "Access-Control-Allow-Origin": "*",
        }
        if self.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        return Response(self.script, media_type=MEDIA_TYPE, headers=headers)

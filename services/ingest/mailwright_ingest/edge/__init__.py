"""The HTTP edge of the ingest service: Segment's tracking API, the browser collector,
open and click tracking, one-click unsubscribe and provider webhooks."""

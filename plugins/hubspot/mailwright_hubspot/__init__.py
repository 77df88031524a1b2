"""Mailwright's HubSpot connector: contacts source, audience sync, webhooks, single send.

`plugin` registers it; `source`, `audience`, `webhook` and `email` hold its four
capabilities; `fake.FakeHubSpot` is a local HubSpot for tests, demos and benchmarks.
"""

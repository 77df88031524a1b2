"""Test kit for Mailwright services and plugins.

`mailwright.testing.plugin` is loaded by pytest through the `pytest11` entry point and
provides fixtures for the real backing servers (SQLite, PostgreSQL, Redis). Connector
authors also find fake-server helpers and conformance suites here.
"""

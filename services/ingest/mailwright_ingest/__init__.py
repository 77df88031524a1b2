"""Mailwright ingest service."""

"""Mailwright render service."""

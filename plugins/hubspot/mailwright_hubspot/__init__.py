"""Mailwright hubspot plugin."""

"""Mailwright files plugin."""

"""Mailwright profile service."""

"""Mailwright delivery service."""

"""Mailwright segment service."""

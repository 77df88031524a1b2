"""Mailwright smtp plugin."""

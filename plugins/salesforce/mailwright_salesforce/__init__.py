"""Mailwright salesforce plugin."""

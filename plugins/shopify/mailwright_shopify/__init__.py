"""Mailwright shopify plugin."""

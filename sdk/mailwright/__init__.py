"""Mailwright SDK: contracts, runtime and plugin contract shared by every service and plugin."""

__version__ = "0.1.0"

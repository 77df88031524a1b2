"""Mailwright mailchimp plugin."""

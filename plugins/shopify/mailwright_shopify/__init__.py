"""Mailwright's Shopify connector: verified webhooks and an Admin API import.

`plugin` registers it; `webhook.ShopifyWebhook` and `source.ShopifySource` are its two
capabilities; `fake.FakeShopify` is a local Shopify for tests, demos and benchmarks.
"""

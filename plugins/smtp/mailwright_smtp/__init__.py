"""Mailwright's SMTP plugin: an email provider for any SMTP relay, and a local sink.

- `mailwright_smtp.plugin` — the entry point; registers the `smtp` connector.
- `mailwright_smtp.provider.SmtpEmailProvider` — sends over pooled aiosmtplib
  connections (STARTTLS or implicit TLS, AUTH), signs with DKIM (dkimpy), maps replies
  to error kinds (`mailwright_smtp.replies`).
- `mailwright_smtp.sink` — an aiosmtpd server that writes every message it receives as an
  `.eml` file: `python -m mailwright_smtp.sink --dir DIR --port N`.
"""

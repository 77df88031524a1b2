"""One canonical form for the many ways people write a value.

Ingest normalises every event with these functions, connectors normalise what they pull
with them, and the identity engine compares records through them, so each rule has one
implementation:

- contact data (`contact`): text folding, email addresses, phone numbers (E.164, with
  `phonenumbers`), countries (ISO 3166 alpha-2), postal codes, calendar dates, the region
  of a locale;
- event times (`times`): ISO 8601 or epoch milliseconds to aware UTC, and the clock-skew
  correction of client times;
- money (`money`): ISO 4217 currencies and `Decimal` amounts.

The `normalize_*` functions return `None` for a value that is empty or not understood;
`parse_timestamp` and `parse_money` raise `ValueError` saying why, since their callers
report the reason to whoever sent the value.
"""

from mailwright.normalize.contact import (
    email_local_part,
    fold_text,
    normalize_country,
    normalize_date,
    normalize_email,
    normalize_phone,
    normalize_postal_code,
    parse_date,
    region_of_locale,
)
from mailwright.normalize.money import format_money, normalize_currency, parse_money
from mailwright.normalize.times import correct_clock_skew, format_timestamp, parse_timestamp

__all__ = [
    "correct_clock_skew",
    "email_local_part",
    "fold_text",
    "format_money",
    "format_timestamp",
    "normalize_country",
    "normalize_currency",
    "normalize_date",
    "normalize_email",
    "normalize_phone",
    "normalize_postal_code",
    "parse_date",
    "parse_money",
    "parse_timestamp",
    "region_of_locale",
]

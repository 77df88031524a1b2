"""Contact data: text folding, email addresses, phone numbers, countries, postal codes
and calendar dates. Each returns `None` for a value that is empty or not understood."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from functools import lru_cache

import phonenumbers
from babel.core import Locale, get_global

__all__ = [
    "email_local_part",
    "fold_text",
    "normalize_country",
    "normalize_date",
    "normalize_email",
    "normalize_phone",
    "normalize_postal_code",
    "parse_date",
    "region_of_locale",
]

# Letters that NFKD does not decompose into a base letter and a combining mark.
_SPECIAL_LETTERS = str.maketrans(
    {
        "ß": "ss",
        "ẞ": "ss",
        "æ": "ae",
        "Æ": "ae",
        "œ": "oe",
        "Œ": "oe",
        "ø": "o",
        "Ø": "o",
        "ł": "l",
        "Ł": "l",
        "đ": "d",
        "Đ": "d",
        "ð": "d",
        "Ð": "d",
        "þ": "th",
        "Þ": "th",
        "\u0131": "i",  # dotless i
    }
)
_APOSTROPHES = re.compile("['`\u2019\u2018\u00b4]")
_NOT_WORD = re.compile(r"[^0-9a-z]+")


@lru_cache(maxsize=262_144)
def fold_text(value: str | None) -> str | None:
    """Lower-case ASCII words separated by single spaces, or None when nothing is left.

    Accents are removed (``Müller`` → ``muller``), apostrophes join (``O'Brien`` →
    ``obrien``) and every other run of punctuation or whitespace becomes one space.
    """
    if value is None:
        return None
    text = unicodedata.normalize("NFKD", value.translate(_SPECIAL_LETTERS))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = _NOT_WORD.sub(" ", _APOSTROPHES.sub("", text)).strip()
    return text or None


# ---------------------------------------------------------------------------- email

# Providers whose mailboxes ignore a "+tag" suffix of the local part.
_PLUS_TAG_DOMAINS = frozenset(
    {
        "gmail.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "msn.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "fastmail.com",
        "protonmail.com",
        "proton.me",
        "pm.me",
    }
)
# Providers whose mailboxes ignore dots in the local part.
_DOTLESS_DOMAINS = frozenset({"gmail.com"})
_DOMAIN_ALIASES = {"googlemail.com": "gmail.com"}
_LOCAL_PART = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~.-]+$")
_DOMAIN = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$")


def normalize_email(value: str | None, *, provider_rules: bool = True) -> str | None:
    """The canonical form of an email address, or None when it is not an address.

    Lower-cases the address, drops a ``mailto:`` prefix and surrounding angle brackets,
    and, with ``provider_rules``, applies what the big providers do with the local part:
    Gmail ignores dots and ``+tags`` (and ``googlemail.com`` is ``gmail.com``); Outlook,
    iCloud, Fastmail and Proton ignore ``+tags``.
    """
    if value is None:
        return None
    text = value.strip().strip("<>").strip().lower()
    text = text.removeprefix("mailto:")
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        return None
    domain = domain.rstrip(".")
    if not _LOCAL_PART.match(local) or not _DOMAIN.match(domain) or len(text) > 254:
        return None
    if provider_rules:
        domain = _DOMAIN_ALIASES.get(domain, domain)
        if domain in _PLUS_TAG_DOMAINS:
            local = local.split("+", 1)[0]
        if domain in _DOTLESS_DOMAINS:
            local = local.replace(".", "")
        if not local:
            return None
    return f"{local}@{domain}"


def email_local_part(email: str) -> str:
    """The part of an address before its last ``@``."""
    return email.rpartition("@")[0]


# ---------------------------------------------------------------------------- phone


_PHONE_PUNCTUATION = re.compile(r"[\s().\-/]+")


def normalize_phone(value: str | None, default_region: str | None = None) -> str | None:
    """The E.164 form (``+14155550123``) of a phone number, or None.

    A number without a leading ``+`` (or international prefix) is read as a national
    number of ``default_region`` (ISO 3166 alpha-2); without a region it cannot be read.
    Numbers whose length is impossible for their country are rejected; numbers are not
    checked against allocated ranges, so test numbers such as 555-0100 are kept.
    """
    if value is None:
        return None
    # The same number written with other spacing or punctuation shares one cache entry.
    compact = _PHONE_PUNCTUATION.sub("", value)
    if not compact:
        return None
    return _parse_phone(compact, default_region.upper() if default_region else None)


@lru_cache(maxsize=65536)
def _parse_phone(compact: str, region: str | None) -> str | None:
    try:
        number = phonenumbers.parse(compact, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    formatted: str = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return formatted


# ---------------------------------------------------------------------------- country

_COUNTRY_ALIASES = {
    "usa": "US",
    "us": "US",
    "u s": "US",
    "u s a": "US",
    "america": "US",
    "united states of america": "US",
    "uk": "GB",
    "u k": "GB",
    "great britain": "GB",
    "britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "holland": "NL",
    "the netherlands": "NL",
    "south korea": "KR",
    "north korea": "KP",
    "russia": "RU",
    "czech republic": "CZ",
    "ivory coast": "CI",
    "uae": "AE",
}
_NAME_LOCALES = ("en", "de", "fr", "es", "it", "nl", "pt")


@lru_cache(maxsize=1)
def _country_table() -> dict[str, str]:
    """Folded names and codes of every country → its ISO 3166 alpha-2 code."""
    english = [str(code) for code in Locale("en").territories]
    codes = {code for code in english if len(code) == 2 and code.isalpha() and code != "ZZ"}
    table: dict[str, str] = {}
    for locale_name in _NAME_LOCALES:
        for code, name in Locale(locale_name).territories.items():
            folded = fold_text(str(name))
            if str(code) in codes and folded:
                table.setdefault(folded, str(code))
    for alias, targets in get_global("territory_aliases").items():
        if len(alias) == 3 and alias.isalpha() and len(targets) == 1 and targets[0] in codes:
            table.setdefault(alias.lower(), targets[0])
    for code in codes:
        table[code.lower()] = code
    table.update(_COUNTRY_ALIASES)
    return table


def normalize_country(value: str | None) -> str | None:
    """The ISO 3166 alpha-2 code of a country written as a code or a name, or None.

    Accepts alpha-2 and alpha-3 codes and country names in English, German, French,
    Spanish, Italian, Dutch and Portuguese, in any case and with or without accents.
    """
    folded = fold_text(value)
    if folded is None:
        return None
    return _country_table().get(folded)


_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z]{4})?[-_]([A-Za-z]{2})(?:[-_.@].*)?$")


def region_of_locale(locale: str | None) -> str | None:
    """The country of a locale tag (``en-GB``, ``fr_FR.UTF-8``, ``zh-Hant-TW``), or None.

    Used as the default region when reading phone numbers written without ``+``.
    """
    if not locale:
        return None
    match = _LOCALE.match(locale.strip())
    if match is None:
        return None
    region = match.group(1).upper()
    return region if region.lower() in _country_table() else None


# ---------------------------------------------------------------------------- postal code

_NOT_ALNUM = re.compile(r"[^0-9A-Z]+")


def normalize_postal_code(value: str | None, country: str | None = None) -> str | None:
    """Upper-case letters and digits of a postal code, without spaces or dashes.

    For the United States only the five-digit ZIP is kept (``94110-1234`` → ``94110``).
    """
    folded = fold_text(value)
    if folded is None:
        return None
    code = _NOT_ALNUM.sub("", folded.upper())
    if country == "US" and len(code) == 9 and code.isdigit():
        code = code[:5]
    return code or None


# ---------------------------------------------------------------------------- dates

_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_TIME_SUFFIX = re.compile(r"[t ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?(z|[+-]\d{2}:?\d{2})?$")
_ISO = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_NUMERIC = re.compile(r"^(\d{1,2})([-/.])(\d{1,2})[-/.](\d{2}|\d{4})$")
_DAY_MONTH_NAME = re.compile(r"^(\d{1,2})(?:st|nd|rd|th)?[ -]?([a-z]+)[ -]?(\d{2}|\d{4})$")
_MONTH_NAME_DAY = re.compile(r"^([a-z]+) ?(\d{1,2})(?:st|nd|rd|th)?,? ?(\d{2}|\d{4})$")


def _full_year(year: int, digits: int, today: date) -> int:
    if digits == 4:
        return year
    # A two-digit year is the most recent such year not in the future.
    century = today.year - today.year % 100
    return century + year if century + year <= today.year else century - 100 + year


def _make(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def parse_date(
    value: str | None, *, day_first: bool = False, today: date | None = None
) -> date | None:
    """A calendar date written in one of the common forms, or None.

    Understood: ISO (``1985-03-14``, with or without a time), ``19850314``, numeric dates
    with ``/``, ``-`` or ``.`` and two- or four-digit years, and month names
    (``14 March 1985``, ``Mar 14, 1985``, ``14-Mar-85``). Dotted dates are day first, as
    they are written in Europe; for ``/`` and ``-`` a part above 12 settles the order and
    otherwise ``day_first`` does (``False``: 03/04/1985 is March 4th).
    """
    if value is None:
        return None
    text = _TIME_SUFFIX.sub("", value.strip().lower()).strip()
    if not text:
        return None
    today = today or date.today()
    if match := _ISO.match(text) or _COMPACT.match(text):
        return _make(int(match[1]), int(match[2]), int(match[3]))
    if match := _NUMERIC.match(text):
        first, separator, second = int(match[1]), match[2], int(match[3])
        year = _full_year(int(match[4]), len(match[4]), today)
        if separator == "." or first > 12 or (day_first and second <= 12):
            return _make(year, second, first)
        return _make(year, first, second)
    if match := _DAY_MONTH_NAME.match(text):
        month = _MONTHS.get(match[2])
        year = _full_year(int(match[3]), len(match[3]), today)
        return _make(year, month, int(match[1])) if month else None
    if match := _MONTH_NAME_DAY.match(text):
        month = _MONTHS.get(match[1])
        year = _full_year(int(match[3]), len(match[3]), today)
        return _make(year, month, int(match[2])) if month else None
    return None


def normalize_date(value: str | None, *, day_first: bool = False) -> str | None:
    """The ISO form (``1985-03-14``) of a date written in a common form, or None."""
    parsed = parse_date(value, day_first=day_first)
    return parsed.isoformat() if parsed else None

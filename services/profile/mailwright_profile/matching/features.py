"""Records turned into columns of normalised values that comparisons and blocking read.

Each column is a numpy object array with one entry per record: a normalised string, or
None where the record has no usable value. Derived columns (phonetic codes, parts of
dates, the local part of an email) sit beside the values they come from, so that every
comparison is a vectorised operation over pairs of row indices.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import jellyfish
import numpy as np
import numpy.typing as npt

from mailwright.normalize import (
    email_local_part,
    fold_text,
    normalize_country,
    normalize_date,
    normalize_email,
    normalize_phone,
    normalize_postal_code,
)
from mailwright_profile.matching.nicknames import formal_names
from mailwright_profile.matching.records import Record

__all__ = ["FeatureTable", "build_features"]

ObjectArray = npt.NDArray[np.object_]

_TITLES = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "madam"})
_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv", "phd", "md", "esq"})
_STREET_WORDS = {
    "street": "st",
    "avenue": "ave",
    "av": "ave",
    "road": "rd",
    "boulevard": "blvd",
    "drive": "dr",
    "lane": "ln",
    "court": "ct",
    "place": "pl",
    "square": "sq",
    "terrace": "ter",
    "highway": "hwy",
    "parkway": "pkwy",
    "circle": "cir",
    "apartment": "apt",
    "suite": "ste",
    "unit": "unit",
    "floor": "fl",
    "north": "n",
    "south": "s",
    "east": "e",
    "west": "w",
    "strasse": "str",
    "number": "no",
}
_APT_MARK = re.compile(r"^(apt|ste|unit|no|fl)\s+")
_US_STATES = {
    "alabama": "al", "alaska": "ak", "arizona": "az", "arkansas": "ar", "california": "ca",
    "colorado": "co", "connecticut": "ct", "delaware": "de", "florida": "fl", "georgia": "ga",
    "hawaii": "hi", "idaho": "id", "illinois": "il", "indiana": "in", "iowa": "ia",
    "kansas": "ks", "kentucky": "ky", "louisiana": "la", "maine": "me", "maryland": "md",
    "massachusetts": "ma", "michigan": "mi", "minnesota": "mn", "mississippi": "ms",
    "missouri": "mo", "montana": "mt", "nebraska": "ne", "nevada": "nv",
    "new hampshire": "nh", "new jersey": "nj", "new mexico": "nm", "new york": "ny",
    "north carolina": "nc", "north dakota": "nd", "ohio": "oh", "oklahoma": "ok",
    "oregon": "or", "pennsylvania": "pa", "rhode island": "ri", "south carolina": "sc",
    "south dakota": "sd", "tennessee": "tn", "texas": "tx", "utah": "ut", "vermont": "vt",
    "virginia": "va", "washington": "wa", "west virginia": "wv", "wisconsin": "wi",
    "wyoming": "wy", "district of columbia": "dc",
}  # fmt: skip


@dataclass(frozen=True)
class FeatureTable:
    """Normalised columns for a batch of records, row i being record i.

    `unparsed` counts, per trait, the values that were present but could not be
    understood (an impossible phone number, a date in no known form) and so count as
    missing.
    """

    record_ids: tuple[str, ...]
    columns: dict[str, ObjectArray]
    codes: dict[str, npt.NDArray[np.int32]]
    formal_first_names: npt.NDArray[np.int32]
    unparsed: dict[str, int]

    def __len__(self) -> int:
        return len(self.record_ids)

    def column(self, name: str) -> ObjectArray:
        """The normalised values of a column (None where missing)."""
        try:
            return self.columns[name]
        except KeyError:
            raise KeyError(f"no feature column {name!r}") from None

    def code(self, name: str) -> npt.NDArray[np.int32]:
        """A column as integer codes, equal codes for equal values, -1 where missing."""
        try:
            return self.codes[name]
        except KeyError:
            raise KeyError(f"no feature column {name!r}") from None


@lru_cache(maxsize=200_000)
def _name_words(value: str) -> tuple[str, ...]:
    folded = fold_text(value)
    return tuple(folded.split()) if folded else ()


def _first_name(value: str | None) -> str | None:
    """The first given name, a hyphenated one kept whole (Ji-ho → jiho)."""
    if value is None:
        return None
    words = [word for word in _name_words(value.replace("-", "")) if word not in _TITLES]
    return words[0] if words else None


def _last_name(value: str | None) -> str | None:
    if value is None:
        return None
    words = [w for w in _name_words(value) if w not in _SUFFIXES and w not in _TITLES]
    return "".join(words) or None


@lru_cache(maxsize=200_000)
def _phonetic(value: str) -> str | None:
    return jellyfish.metaphone(value) or None


@lru_cache(maxsize=200_000)
def _address(value: str) -> str | None:
    folded = fold_text(value)
    if folded is None:
        return None
    return " ".join(_STREET_WORDS.get(word, word) for word in folded.split())


def _address_line2(value: str | None) -> str | None:
    line = _address(value) if value else None
    return _APT_MARK.sub("", line) if line else None


def _city(value: str | None) -> str | None:
    folded = fold_text(value)
    if folded is None:
        return None
    words = folded.split()
    if words[0] in ("st", "ste"):
        words[0] = "saint"
    return " ".join(words)


def _region(value: str | None) -> str | None:
    folded = fold_text(value)
    return _US_STATES.get(folded, folded) if folded else None


def _obj(values: Sequence[str | None]) -> ObjectArray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _derive(values: Sequence[str | None], function: Callable[[str], str | None]) -> ObjectArray:
    return _obj([function(value) if value is not None else None for value in values])


def build_features(
    records: Sequence[Record], *, default_region: str | None = None, day_first: bool = False
) -> FeatureTable:
    """Normalise every record for matching.

    `default_region` (ISO 3166 alpha-2) reads phone numbers written without a country
    code when the record has no country of its own; `day_first` settles dates such as
    03/04/1985 (see `mailwright.normalize.parse_date`).
    """
    region = normalize_country(default_region) if default_region else None
    unparsed = dict.fromkeys(("email", "phone", "birth_date", "country"), 0)
    countries: list[str | None] = []
    emails: list[str | None] = []
    phones: list[str | None] = []
    births: list[str | None] = []
    for record in records:
        country = normalize_country(record.country)
        email = normalize_email(record.email)
        phone = normalize_phone(record.phone, country or region)
        birth = normalize_date(record.birth_date, day_first=day_first)
        for field, raw, value in (
            ("country", record.country, country),
            ("email", record.email, email),
            ("phone", record.phone, phone),
            ("birth_date", record.birth_date, birth),
        ):
            if raw is not None and value is None:
                unparsed[field] += 1
        countries.append(country)
        emails.append(email)
        phones.append(phone)
        births.append(birth)

    first = [_first_name(record.first_name) for record in records]
    last = [_last_name(record.last_name) for record in records]
    columns: dict[str, ObjectArray] = {
        "first_name": _obj(first),
        "last_name": _obj(last),
        "first_phonetic": _derive(first, _phonetic),
        "last_phonetic": _derive(last, _phonetic),
        "email": _obj(emails),
        "email_local": _derive(emails, email_local_part),
        "phone": _obj(phones),
        "birth_date": _obj(births),
        "birth_month": _derive(births, lambda iso: iso[:7]),
        "birth_year": _derive(births, lambda iso: iso[:4]),
        "birth_swapped": _derive(
            births, lambda iso: f"{iso[:4]}-{iso[8:]}-{iso[5:7]}" if iso[8:] <= "12" else None
        ),
        "address_line1": _derive([r.address_line1 for r in records], _address),
        "address_line2": _obj([_address_line2(r.address_line2) for r in records]),
        "city": _obj([_city(record.city) for record in records]),
        "postal_code": _obj(
            [
                normalize_postal_code(record.postal_code, country or region)
                for record, country in zip(records, countries, strict=True)
            ]
        ),
        "region": _obj([_region(record.region) for record in records]),
        "country": _obj(countries),
        "user_id": _obj([record.user_id for record in records]),
    }
    columns["email_from_name"] = _obj(
        [
            "yes" if local and _made_of_name(local, given, family) else None
            for local, given, family in zip(columns["email_local"], first, last, strict=True)
        ]
    )
    columns["address"] = _obj(
        [
            None if line1 is None else (f"{line1} {line2}" if line2 else line1)
            for line1, line2 in zip(columns["address_line1"], columns["address_line2"], strict=True)
        ]
    )
    # Present where a record has any part of an address or a phone: what the address
    # and phone comparison needs to say anything.
    columns["contact"] = _obj(
        [
            "|".join(part or "" for part in parts) if any(parts) else None
            for parts in zip(
                columns["address"],
                columns["city"],
                columns["postal_code"],
                columns["country"],
                columns["phone"],
                strict=True,
            )
        ]
    )
    return FeatureTable(
        record_ids=tuple(record.record_id for record in records),
        columns=columns,
        codes=_shared_codes(columns),
        formal_first_names=_formal_name_ids(first),
        unparsed=unparsed,
    )


_LOCAL_SEPARATORS = re.compile(r"[._+0-9-]")


def _made_of_name(local: str, first: str | None, last: str | None) -> bool:
    """Whether an email local part is only the person's names or initials, perhaps with
    digits (jsmith, mary.jones85): such local parts recur among different people."""
    if first is None or last is None:
        return False
    letters = _LOCAL_SEPARATORS.sub("", local)
    return any(
        letters in {f + last, last + f, f[0] + last, f + last[0], last + f[0], f, last}
        for f in formal_names(first) | {first}
    )


def _formal_name_ids(first_names: Sequence[str | None]) -> npt.NDArray[np.int32]:
    """Row i holds ids of the formal names first name i may stand for, padded with -1."""
    ids: dict[str, int] = {}
    rows = [
        sorted(ids.setdefault(name, len(ids)) for name in formal_names(first)) if first else []
        for first in first_names
    ]
    width = max((len(row) for row in rows), default=1) or 1
    matrix = np.full((len(rows), width), -1, dtype=np.int32)
    for index, row in enumerate(rows):
        matrix[index, : len(row)] = row
    return matrix


# Columns whose values are compared with each other's (a swapped name, a swapped date)
# share one code book, so that equal codes mean equal values across them.
_SHARED_CODE_BOOKS = (("first_name", "last_name"), ("birth_date", "birth_swapped"))


def _shared_codes(columns: dict[str, ObjectArray]) -> dict[str, npt.NDArray[np.int32]]:
    groups: list[tuple[str, ...]] = [*_SHARED_CODE_BOOKS]
    grouped = {name for group in groups for name in group}
    groups += [(name,) for name in columns if name not in grouped]
    codes: dict[str, npt.NDArray[np.int32]] = {}
    for group in groups:
        distinct = dict.fromkeys(value for name in group for value in columns[name])
        distinct.pop(None, None)
        book: dict[str | None, int] = {value: index for index, value in enumerate(distinct)}
        book[None] = -1
        for name in group:
            values = columns[name]
            codes[name] = np.fromiter(
                map(book.__getitem__, values), dtype=np.int32, count=len(values)
            )
    return codes

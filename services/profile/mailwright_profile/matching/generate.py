"""Test records with known truth: people, and the messy records sources keep of them.

Each generated person has a name, birth date, email, phone and address in one of a few
countries. Each record of a person is what one source holds: the first is fairly
complete, later ones (the duplicates to be found) carry the noise of real files — typos,
nicknames, swapped first and last names, missing fields, phones, dates and addresses
written differently, changed email domains, moves. Some people share a household (same
surname, address and sometimes phone), which is what makes precision hard.

Everything is drawn from one `random.Random(seed)`: the same arguments give the same
records. The truth maps each record id to the id of the person it describes.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from datetime import date, timedelta

import phonenumbers

from mailwright.normalize import fold_text, normalize_email
from mailwright_profile.matching.generate_data import (
    COMPANY_DOMAINS,
    COUNTRIES,
    FIRST_NAMES,
    LAST_NAMES,
    CountryData,
)
from mailwright_profile.matching.nicknames import NICKNAMES
from mailwright_profile.matching.noise import Noise, typo
from mailwright_profile.matching.records import Record

__all__ = ["GeneratedRecords", "Noise", "generate_records", "typo"]

_US_AREA_CODES = (212, 213, 312, 415, 713, 602, 215, 210, 619, 214, 512, 408, 904, 614, 704, 206)
_MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_POSTCODE_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"


@dataclass(frozen=True)
class GeneratedRecords:
    records: tuple[Record, ...]
    truth: dict[str, str]  # record_id → person id


@dataclass(frozen=True)
class _Home:
    city: int  # index into country.cities
    street: str
    street_type: int  # index into country.street_types
    number: int
    unit: str | None
    postal_code: str


@dataclass(frozen=True)
class _Person:
    person_id: str
    first: str
    last: str
    birth: date
    email: str
    phone: str  # E.164
    country: CountryData
    home: _Home
    user_id: str | None


class _Generator:
    def __init__(self, seed: int, noise: Noise) -> None:
        self.rng = random.Random(seed)
        self.noise = noise
        self.emails: set[str] = set()
        self.people = 0
        self.last_weights = [1.0 / (rank + 1) ** 0.9 for rank in range(len(LAST_NAMES))]
        self.first_weights = [1.0 / (rank + 1) ** 0.5 for rank in range(len(FIRST_NAMES))]

    # -------------------------------------------------------------- people

    def _unique_email(self, local: str, domain: str) -> str:
        """An address no other person has, as mailbox providers see it (Gmail ignores dots)."""
        candidate = f"{local}@{domain}"
        while normalize_email(candidate) in self.emails:
            candidate = f"{local}{self.rng.randrange(1, 1000)}@{domain}"
        self.emails.add(normalize_email(candidate) or candidate)
        return candidate

    def _local_part(self, first: str, last: str, birth: date) -> str:
        f = (fold_text(first) or "x").replace(" ", "")
        surname = (fold_text(last) or "x").replace(" ", "")
        patterns = (
            f"{f}.{surname}", f"{f}{surname}", f"{f[0]}{surname}", f"{f}_{surname}",
            f"{f}.{surname}{birth.year % 100:02d}", f"{f}{surname[0]}", f"{surname}.{f}",
            f"{f}{birth.year}", f"{f[0]}.{surname}",
        )  # fmt: skip
        return self.rng.choice(patterns)

    def _phone(self, country: CountryData) -> str:
        digits = "".join(self.rng.choice(string.digits) for _ in range(8))
        match country.code:
            case "US":
                exchange = self.rng.randrange(200, 1000)
                return f"+1{self.rng.choice(_US_AREA_CODES)}{exchange}{digits[:4]}"
            case "GB":
                return f"+447{self.rng.choice('3456789')}{digits}"
            case "DE":
                return f"+4915{self.rng.choice('1279')}{digits}"
            case _:
                return f"+33{self.rng.choice('67')}{digits}"

    def _postal_code(self, country: CountryData, prefix: str) -> str:
        rng = self.rng
        match country.code:
            case "GB":
                letters = "".join(rng.choices(_POSTCODE_LETTERS, k=2))
                inward = f"{rng.randrange(10)}{letters}"
                return f"{prefix}{rng.randrange(1, 20)} {inward}"
            case "US":
                return f"{prefix}{rng.randrange(0, 40):02d}"
            case _:
                return f"{prefix}{rng.randrange(0, 10 ** (5 - len(prefix))):0{5 - len(prefix)}d}"

    def _home(self, country: CountryData) -> _Home:
        rng = self.rng
        weights = [1 / (rank + 1) for rank in range(len(country.cities))]
        city = rng.choices(range(len(country.cities)), weights=weights)[0]
        unit = f"{rng.randrange(1, 30)}{rng.choice('AB ')}".strip() if rng.random() < 0.25 else None
        return _Home(
            city=city,
            street=rng.choice(country.streets),
            street_type=rng.randrange(len(country.street_types)),
            number=rng.randrange(1, 400),
            unit=unit,
            postal_code=self._postal_code(country, country.cities[city][3]),
        )

    def person(self, household: _Person | None) -> _Person:
        rng = self.rng
        self.people += 1
        person_id = f"person-{self.people:07d}"
        first = rng.choices(FIRST_NAMES, weights=self.first_weights)[0]
        if household is not None:
            gap = rng.choice((rng.randrange(-5, 6), rng.randrange(22, 36)))
            birth = household.birth + timedelta(days=365 * gap + rng.randrange(-180, 180))
            if birth.year > 2006:
                birth = household.birth - (birth - household.birth)
            while first == household.first:
                first = rng.choices(FIRST_NAMES, weights=self.first_weights)[0]
            last, country = household.last, household.country
        else:
            birth = date(1940, 1, 1) + timedelta(days=rng.randrange(365 * 65))
            last = rng.choices(LAST_NAMES, weights=self.last_weights)[0]
            country = rng.choices(COUNTRIES, weights=[c.weight for c in COUNTRIES])[0]
        domain = (
            rng.choice(country.email_domains)
            if rng.random() < 0.85
            else rng.choice(COMPANY_DOMAINS)
        )
        email = self._unique_email(self._local_part(first, last, birth), domain)
        if household is not None:
            home = household.home
            phone = household.phone if rng.random() < 0.5 else self._phone(country)
        else:
            home = self._home(country)
            phone = self._phone(country)
        user_id = f"u{self.people:08d}" if rng.random() < 0.3 else None
        return _Person(person_id, first, last, birth, email, phone, country, home, user_id)

    # -------------------------------------------------------------- formatting

    def _format_phone(self, phone: str) -> str:
        number = phonenumbers.parse(phone)
        formats = phonenumbers.PhoneNumberFormat
        style = self.rng.randrange(5)
        if style == 0:
            return phone
        if style == 1:
            return str(phonenumbers.format_number(number, formats.INTERNATIONAL))
        national = str(phonenumbers.format_number(number, formats.NATIONAL))
        if style == 2:
            return national
        if style == 3:
            return "".join(ch for ch in national if ch.isdigit())
        return national.replace(" ", ".").replace("(", "").replace(")", "").replace("-", ".")

    def _format_date(self, birth: date, country: CountryData) -> str:
        style = self.rng.randrange(6)
        if style <= 1:
            return birth.isoformat()
        if style == 2:
            if country.code == "DE":
                return f"{birth.day:02d}.{birth.month:02d}.{birth.year}"
            if country.day_first:
                return f"{birth.day:02d}/{birth.month:02d}/{birth.year}"
            return f"{birth.month:02d}/{birth.day:02d}/{birth.year}"
        if style == 3:
            return f"{_MONTH_NAMES[birth.month - 1]} {birth.day}, {birth.year}"
        if style == 4:
            return f"{birth.day} {_MONTH_NAMES[birth.month - 1][:3]} {birth.year}"
        return birth.strftime("%Y%m%d")

    def _format_case(self, text: str) -> str:
        if self.rng.random() < self.noise.name_case:
            return text.upper() if self.rng.random() < 0.5 else text.lower()
        return text

    # -------------------------------------------------------------- one record

    def _names(self, person: _Person, duplicate: bool) -> tuple[str, str]:
        rng, noise = self.rng, self.noise
        first, last = person.first, person.last
        if duplicate:
            short_forms = NICKNAMES.get(fold_text(first) or "")
            if short_forms and rng.random() < noise.nickname:
                first = rng.choice(short_forms).capitalize()
            if rng.random() < noise.name_typo:
                first = typo(rng, first)
            if rng.random() < noise.name_typo:
                last = typo(rng, last)
            if rng.random() < noise.swapped_names:
                first, last = last, first
        return self._format_case(first), self._format_case(last)

    def _email(self, person: _Person, duplicate: bool) -> str | None:
        rng, noise = self.rng, self.noise
        local, _, domain = person.email.partition("@")
        if not duplicate:
            return person.email if rng.random() < 0.95 else None
        draw = rng.random()
        if draw < noise.email_missing:
            return None
        draw -= noise.email_missing
        if draw < noise.email_new_domain:
            others = [d for d in person.country.email_domains if d != domain]
            return self._unique_email(local, rng.choice(others))
        draw -= noise.email_new_domain
        if draw < noise.email_new_address:
            new_local = self._local_part(person.first, person.last, person.birth)
            return self._unique_email(new_local, rng.choice(COMPANY_DOMAINS))
        if rng.random() < noise.email_typo:
            mistyped = f"{typo(rng, local)}@{domain}"
            if normalize_email(mistyped) not in self.emails:  # not someone else's address
                return mistyped
        if domain == "gmail.com" and rng.random() < 0.2:
            local = local.replace(".", "") if "." in local else f"{local}+shop"
        return f"{local}@{domain}".upper() if rng.random() < 0.05 else f"{local}@{domain}"

    def _phone_value(self, person: _Person, duplicate: bool) -> str | None:
        rng, noise = self.rng, self.noise
        if rng.random() < (noise.phone_missing if duplicate else 0.3):
            return None
        phone = person.phone
        if duplicate and rng.random() < noise.phone_new:
            phone = self._phone(person.country)
        elif duplicate and rng.random() < noise.phone_typo:
            position = rng.randrange(len(phone) - 6, len(phone))
            phone = phone[:position] + rng.choice(string.digits) + phone[position + 1 :]
        return self._format_phone(phone)

    def _birth(self, person: _Person, duplicate: bool) -> str | None:
        rng, noise = self.rng, self.noise
        if rng.random() < (noise.birth_missing if duplicate else 0.3):
            return None
        birth = person.birth
        if duplicate and rng.random() < noise.birth_swapped and birth.day <= 12:
            return date(birth.year, birth.day, birth.month).isoformat()
        if duplicate and rng.random() < noise.birth_typo:
            shift = rng.choice(
                (timedelta(days=1), timedelta(days=-1), timedelta(days=10), timedelta(days=3650))
            )
            birth = birth + shift
        return self._format_date(birth, person.country)

    def _address_fields(self, person: _Person, duplicate: bool) -> dict[str, str | None]:
        rng, noise = self.rng, self.noise
        country = person.country
        fields: dict[str, str | None] = {
            "country": rng.choice(country.names) if rng.random() < 0.8 else None
        }
        if rng.random() < (noise.address_missing if duplicate else 0.1):
            return fields
        home = person.home
        if duplicate and rng.random() < noise.address_moved:
            home = self._home(country)
        long_type, short_type = country.street_types[home.street_type]
        street = (
            typo(rng, home.street)
            if duplicate and rng.random() < noise.address_typo
            else home.street
        )
        line1 = country.address_pattern.format(
            number=home.number, street=street, type=rng.choice((long_type, short_type))
        )
        city, region_code, region_name, _ = country.cities[home.city]
        postal = home.postal_code
        if country.code == "GB" and rng.random() < 0.3:
            postal = postal.replace(" ", "")
        elif country.code == "US" and rng.random() < 0.1:
            postal = f"{postal}-{rng.randrange(10000):04d}"
        unit = None
        if home.unit:
            unit = rng.choice(
                (f"Apt {home.unit}", f"Apartment {home.unit}", f"#{home.unit}", f"Unit {home.unit}")
            )
        fields.update(
            address_line1=self._format_case(line1),
            address_line2=unit,
            city=self._format_case(city),
            postal_code=postal,
            region=rng.choice((region_code, region_name)) if rng.random() < 0.9 else None,
        )
        return fields

    def record(self, record_id: str, person: _Person, duplicate: bool) -> Record:
        first, last = self._names(person, duplicate)
        user_id = person.user_id if person.user_id and self.rng.random() < 0.4 else None
        return Record(
            record_id=record_id,
            email=self._email(person, duplicate),
            phone=self._phone_value(person, duplicate),
            first_name=first,
            last_name=last,
            birth_date=self._birth(person, duplicate),
            user_id=user_id,
            **self._address_fields(person, duplicate),
        )


_DUPLICATES = (0.55, 0.25, 0.12, 0.05, 0.03)  # chance of 1, 2, 3, 4, 5 records per person


def generate_records(count: int, *, seed: int = 0, noise: Noise | None = None) -> GeneratedRecords:
    """`count` records of generated people, shuffled, with the person behind each.

    Most people have one record; others two to five (see `_DUPLICATES`), the later ones
    changed by `noise`. Record ids are ``rec-0000001``…, assigned after shuffling.
    """
    if count < 0:
        raise ValueError(f"count must not be negative, not {count}")
    generator = _Generator(seed, noise or Noise())
    rng = generator.rng
    drafts: list[tuple[_Person, bool]] = []
    people: list[_Person] = []
    while len(drafts) < count:
        household = None
        if people and rng.random() < generator.noise.household_rate:
            household = rng.choice(people)
        person = generator.person(household)
        people.append(person)
        copies = rng.choices(range(1, len(_DUPLICATES) + 1), weights=_DUPLICATES)[0]
        drafts.extend((person, index > 0) for index in range(copies))
    del drafts[count:]
    rng.shuffle(drafts)
    width = max(7, len(str(count)))
    records: list[Record] = []
    truth: dict[str, str] = {}
    for index, (person, duplicate) in enumerate(drafts, start=1):
        record_id = f"rec-{index:0{width}d}"
        records.append(generator.record(record_id, person, duplicate))
        truth[record_id] = person.person_id
    return GeneratedRecords(records=tuple(records), truth=truth)

"""The noise a duplicate record carries, and the typo that most of it is made of."""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, fields

__all__ = ["Noise", "typo"]


@dataclass(frozen=True)
class Noise:
    """Chances of each kind of change in a duplicate record (the first record is clean)."""

    name_typo: float = 0.08
    nickname: float = 0.12
    swapped_names: float = 0.03
    name_case: float = 0.1
    email_missing: float = 0.2
    email_new_domain: float = 0.1
    email_new_address: float = 0.1
    email_typo: float = 0.02
    phone_missing: float = 0.4
    phone_typo: float = 0.02
    phone_new: float = 0.05
    birth_missing: float = 0.4
    birth_typo: float = 0.02
    birth_swapped: float = 0.02
    address_missing: float = 0.3
    address_moved: float = 0.05
    address_typo: float = 0.05
    household_rate: float = 0.1

    @classmethod
    def none(cls) -> Noise:
        """No noise at all: duplicates are exact copies written the same way."""
        return cls(**{field.name: 0.0 for field in fields(cls)})


def typo(rng: random.Random, text: str) -> str:
    """One insertion, deletion, transposition or substitution of a letter in text."""
    if len(text) < 2:
        return text + rng.choice(string.ascii_lowercase)
    position = rng.randrange(1, len(text)) if rng.random() < 0.85 else 0
    letter = rng.choice(string.ascii_lowercase)
    match rng.randrange(4):
        case 0:
            return text[:position] + letter + text[position:]
        case 1:
            return text[:position] + text[position + 1 :]
        case 2:
            position = min(position, len(text) - 2)
            return text[:position] + text[position + 1] + text[position] + text[position + 2 :]
        case _:
            return text[:position] + letter + text[position + 1 :]

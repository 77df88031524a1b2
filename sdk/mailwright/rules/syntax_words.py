"""Plain words for the parser's terminals, so that syntax errors speak the rule language."""

from __future__ import annotations

from collections.abc import Iterable

_WORDS = {
    "$END": "the end of the rule",
    "_LPAR": '"("',
    "_RPAR": '")"',
    "_LBRACKET": '"["',
    "_RBRACKET": '"]"',
    "_COMMA": '","',
    "COMPARATOR": "a comparison (=, !=, <, <=, >, >=)",
    "NOT_IN": '"not in"',
    "NO": '"no"',
    "TRUE": "true",
    "FALSE": "false",
    "AGGREGATE": "sum, avg, min or max",
    "UNIT": "a unit (minutes, hours, days, weeks)",
    "COMPACT_DURATION": "a duration (15m, 2h, 7d)",
    "DATE": "a date (YYYY-MM-DD)",
    "NUMBER": "a number",
    "INT": "a whole number",
    "STRING": 'a double-quoted string ("...")',
    "QUOTED_NAME": "a name",
    "NAME": "a name",
    "_EMAILS": '"emails"',
    "_STARTS": '"starts with"',
    "_DID": '"did not perform"',
    "_AT": '"at least"',
}

_A_CONDITION = (
    "a condition (trait, event, sum(...), did not perform, opened, clicked, in segment,"
    ' "not" or "(")'
)
# What a condition can start with, said once instead of listing every keyword.
_CONDITION_STARTS = {
    "_TRAIT",
    "_EVENT",
    "AGGREGATE",
    "_DID",
    "_OPENED",
    "_CLICKED",
    "_IN",
    "NOT_IN",
}


def describe_expected(terminals: Iterable[str]) -> list[str]:
    """The expected terminals in plain words, sorted, without repeats."""
    names = set(terminals)
    words: set[str] = set()
    if names >= _CONDITION_STARTS:
        names -= _CONDITION_STARTS | {"_NOT", "_LPAR"}
        words.add(_A_CONDITION)
    for name in names:
        if name in _WORDS:
            words.add(_WORDS[name])
        elif name.startswith("_") and name[1:].isalpha():
            words.add(f'"{name[1:].lower()}"')
        else:
            words.add(name.lower())
    return sorted(words, key=lambda w: (w.startswith('"'), w))


def hint_for(expected: Iterable[str], found: str) -> str:
    """A short piece of advice for the most common slips, or ""."""
    names = set(expected)
    bare_word = found.startswith('"') and found[1:2].isalpha()
    if names == {"STRING"} and bare_word:
        return 'names of events and segments are written in double quotes, e.g. "Order Completed"'
    if "UNIT" in names or "COMPACT_DURATION" in names:
        return "durations are written like 15 minutes, 2 hours, 7 days or 15m, 2h, 7d"
    if "DATE" in names:
        return "dates are written YYYY-MM-DD, optionally followed by THH:MM:SSZ"
    return ""

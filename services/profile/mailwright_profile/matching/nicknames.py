"""Common English nicknames and the given names they stand for.

A nickname may stand for several names (``chris`` is Christopher, Christina or
Christine), so a name maps to a set of formal names, and two first names are nicknames of
each other when their sets meet. Names are in folded form (see `mailwright.normalize.fold_text`).
"""

from __future__ import annotations

from functools import lru_cache

__all__ = ["NICKNAMES", "formal_names"]

# formal name → its common nicknames and short forms
NICKNAMES: dict[str, tuple[str, ...]] = {
    "abigail": ("abby", "abbie", "gail"),
    "albert": ("al", "bert", "bertie"),
    "alexander": ("alex", "alec", "al", "sandy", "xander", "lex"),
    "alexandra": ("alex", "sandra", "sandy", "lexi", "alexa"),
    "alfred": ("al", "alf", "alfie", "fred"),
    "allison": ("ally", "allie"),
    "andrew": ("andy", "drew"),
    "angela": ("angie",),
    "anthony": ("tony", "ant"),
    "antonio": ("tony", "toni"),
    "arthur": ("art", "artie"),
    "barbara": ("barb", "babs", "barbie"),
    "benjamin": ("ben", "benny", "benji"),
    "bernard": ("bernie", "bern"),
    "beverly": ("bev",),
    "bradley": ("brad",),
    "catherine": ("cathy", "cat", "kate", "katie", "cate"),
    "charles": ("charlie", "chuck", "chas", "chaz"),
    "charlotte": ("charlie", "lottie", "lotte"),
    "christina": ("chris", "tina", "christy", "kristy"),
    "christine": ("chris", "tina", "christy"),
    "christopher": ("chris", "kit", "topher"),
    "cynthia": ("cindy",),
    "daniel": ("dan", "danny"),
    "david": ("dave", "davy"),
    "deborah": ("deb", "debbie", "debby"),
    "dennis": ("denny",),
    "donald": ("don", "donny"),
    "dorothy": ("dot", "dottie", "dolly"),
    "douglas": ("doug",),
    "edward": ("ed", "eddie", "ted", "teddy", "ned"),
    "eleanor": ("ellie", "nora", "elle"),
    "elizabeth": ("liz", "lizzie", "beth", "betty", "eliza", "betsy", "libby", "lisa", "liza"),
    "emily": ("em", "emmy"),
    "eugene": ("gene",),
    "frances": ("fran", "frannie"),
    "francis": ("frank", "fran"),
    "frank": ("frankie",),
    "frederick": ("fred", "freddie", "freddy", "rick"),
    "gabriel": ("gabe",),
    "gabriela": ("gabby", "gabi"),
    "gerald": ("gerry", "jerry"),
    "gregory": ("greg",),
    "harold": ("hal", "harry"),
    "henry": ("hank", "harry", "hal"),
    "isabella": ("bella", "izzy", "isa"),
    "jacob": ("jake", "jay"),
    "james": ("jim", "jimmy", "jamie", "jimbo"),
    "janet": ("jan",),
    "jeffrey": ("jeff",),
    "jennifer": ("jen", "jenny", "jenn"),
    "jessica": ("jess", "jessie"),
    "john": ("jack", "johnny", "jon"),
    "jonathan": ("jon", "jonny", "nate"),
    "joseph": ("joe", "joey", "jo"),
    "josephine": ("jo", "josie", "jojo"),
    "joshua": ("josh",),
    "judith": ("judy", "jude"),
    "katherine": ("kathy", "kate", "katie", "kat", "kay", "kit"),
    "kathleen": ("kathy", "kath"),
    "kenneth": ("ken", "kenny"),
    "kimberly": ("kim", "kimmy"),
    "lawrence": ("larry", "laurie"),
    "leonard": ("leo", "len", "lenny"),
    "margaret": ("maggie", "meg", "peggy", "marge", "greta", "madge", "daisy"),
    "matthew": ("matt", "matty"),
    "megan": ("meg",),
    "melissa": ("mel", "missy"),
    "michael": ("mike", "mikey", "mick", "mickey"),
    "michelle": ("shelly", "michele"),
    "nathan": ("nate", "nat"),
    "nathaniel": ("nate", "nat", "nathan"),
    "nicholas": ("nick", "nicky", "nico"),
    "nicole": ("nikki", "nicky", "cole"),
    "olivia": ("liv", "livvy", "ollie"),
    "pamela": ("pam",),
    "patricia": ("pat", "patty", "trish", "tricia", "patsy"),
    "patrick": ("pat", "paddy", "rick"),
    "peter": ("pete",),
    "philip": ("phil", "pip"),
    "phillip": ("phil",),
    "rebecca": ("becky", "becca", "bec"),
    "richard": ("rick", "ricky", "dick", "rich", "richie"),
    "robert": ("bob", "bobby", "rob", "robbie", "bert"),
    "roberta": ("bobbie", "robin"),
    "ronald": ("ron", "ronnie"),
    "samantha": ("sam", "sammy"),
    "samuel": ("sam", "sammy"),
    "sandra": ("sandy",),
    "stephanie": ("steph", "stephie"),
    "stephen": ("steve", "stevie"),
    "steven": ("steve", "stevie"),
    "susan": ("sue", "suzy", "susie"),
    "suzanne": ("sue", "suzy"),
    "theodore": ("ted", "teddy", "theo"),
    "thomas": ("tom", "tommy"),
    "timothy": ("tim", "timmy"),
    "valerie": ("val",),
    "victoria": ("vicky", "tori", "vic"),
    "vincent": ("vince", "vinny"),
    "walter": ("walt", "wally"),
    "william": ("bill", "billy", "will", "willy", "liam"),
    "zachary": ("zach", "zack"),
}


@lru_cache(maxsize=1)
def _index() -> dict[str, frozenset[str]]:
    formal: dict[str, set[str]] = {}
    for name, short_forms in NICKNAMES.items():
        formal.setdefault(name, set()).add(name)
        for short in short_forms:
            formal.setdefault(short, set()).add(name)
    return {name: frozenset(names) for name, names in formal.items()}


def formal_names(first_name: str) -> frozenset[str]:
    """The formal names a folded first name may stand for (itself when unknown)."""
    return _index().get(first_name, frozenset((first_name,)))

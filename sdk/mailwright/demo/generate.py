"""The demo shop's history, generated deterministically from a seed.

A shop of `customers` people, each with an archetype that shapes what they did over the
last year: anonymous browsing stitched to a profile by an identify at sign-up, product
views by category, carts, checkouts, orders with products and revenue (Decimal amounts
written as strings, EUR), and the history of the shop's newsletters (sent, opened,
clicked). The same seed and size always give the same events, with the same message ids,
at the same distances in the past.

Times are offsets in seconds before a reference instant (the moment of loading). Every
offset stays at least an hour away from a whole number of days before that instant, so a
rule window such as "in last 30 days" counts the same events however long the load
takes (up to an hour), and the segment sizes are the same on every run.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

DAY = 86_400
HOUR = 3_600
MARGIN = HOUR
CURRENCY = "EUR"
TIME_TRAITS = ("signup_date",)

CATEGORIES = ("shoes", "outdoor", "kitchen", "books", "toys", "beauty", "garden", "audio")
_NOUNS = {
    "shoes": ("Trail Runner", "Canvas Sneaker", "Leather Boot", "Slip-on", "Sandal"),
    "outdoor": ("Tent", "Sleeping Bag", "Headlamp", "Daypack", "Water Filter"),
    "kitchen": ("Chef Knife", "Dutch Oven", "Pour-over Kettle", "Cutting Board", "Wok"),
    "books": ("Field Guide", "Cookbook", "Novel", "Atlas", "Sketchbook"),
    "toys": ("Puzzle", "Building Set", "Kite", "Board Game", "Plush Fox"),
    "beauty": ("Face Oil", "Clay Mask", "Lip Balm", "Hand Cream", "Shampoo Bar"),
    "garden": ("Pruner", "Seed Kit", "Watering Can", "Trowel", "Planter"),
    "audio": ("Earbuds", "Speaker", "Headphones", "Turntable", "Radio"),
}
_ADJECTIVES = ("Classic", "Nordic", "Pro", "Everyday", "Compact")
FIRST_NAMES = (
    "Ada", "Ben", "Chloé", "Dario", "Emma", "Farid", "Greta", "Hugo", "Ines", "Jonas",
    "Kasia", "Liam", "Maya", "Noah", "Olga", "Pablo", "Quinn", "Rosa", "Sven", "Tara",
    "Ugo", "Vera", "Wim", "Xenia", "Yusuf", "Zoë",
)  # fmt: skip
LAST_NAMES = (
    "Andersen", "Bianchi", "Costa", "Dubois", "Eriksen", "Fischer", "García", "Horvat",
    "Ivanova", "Jansen", "Kowalski", "Lambert", "Moreau", "Novak", "Olsen", "Peeters",
)  # fmt: skip
PLACES = (
    ("FR", "Paris", "fr-FR", "Europe/Paris"),
    ("DE", "Berlin", "de-DE", "Europe/Berlin"),
    ("GB", "London", "en-GB", "Europe/London"),
    ("NL", "Utrecht", "nl-NL", "Europe/Amsterdam"),
    ("ES", "Sevilla", "es-ES", "Europe/Madrid"),
    ("IT", "Torino", "it-IT", "Europe/Rome"),
    ("US", "Portland", "en-US", "America/Los_Angeles"),
)

# Archetype: share of customers. What each one does is in `_History.play`.
ARCHETYPES: tuple[tuple[str, float], ...] = (
    ("loyal", 0.06),
    ("repeat", 0.16),
    ("casual", 0.28),
    ("cart", 0.06),
    ("browser", 0.10),
    ("lapsed", 0.20),
    ("lapsing", 0.02),
    ("new", 0.12),
)
# Probability of opening a newsletter, and of clicking one that was opened.
ENGAGEMENT = {
    "loyal": (0.85, 0.45),
    "repeat": (0.5, 0.25),
    "casual": (0.3, 0.2),
    "cart": (0.35, 0.2),
    "browser": (0.3, 0.15),
    "lapsed": (0.0, 0.0),
    "lapsing": (0.0, 0.0),
    "new": (0.5, 0.3),
}
# The shop's past newsletters: (id, days before now).
NEWSLETTERS: tuple[tuple[str, int], ...] = (
    ("nl-autumn", 84),
    ("nl-boots", 72),
    ("nl-kitchen", 60),
    ("nl-books", 48),
    ("nl-winter", 36),
    ("nl-gifts", 24),
    ("nl-audio", 12),
    ("nl-weekend", 4),
)


@dataclass(frozen=True)
class Product:
    product_id: str
    name: str
    category: str
    price: Decimal


@dataclass(frozen=True)
class Customer:
    user_id: str
    anonymous_id: str
    email: str
    first_name: str
    last_name: str
    country: str
    city: str
    locale: str
    timezone: str
    archetype: str
    subscribed: bool
    signup_ago: int
    """Seconds before the reference instant at which they signed up (identify)."""


@dataclass(frozen=True)
class DemoEvent:
    """One call as a tracking library would make it."""

    message_id: str
    type: str
    """track, page or identify."""
    ago: int
    """Seconds before the reference instant."""
    user_id: str = ""
    anonymous_id: str = ""
    event: str = ""
    name: str = ""
    category: str = ""
    properties: dict[str, Any] = field(default_factory=dict)
    traits: dict[str, Any] = field(default_factory=dict)


def catalogue(seed: int) -> tuple[Product, ...]:
    rng = random.Random(f"{seed}:catalogue")
    products: list[Product] = []
    for category in CATEGORIES:
        for noun in _NOUNS[category]:
            for adjective in _ADJECTIVES[:3]:
                cents = rng.randrange(900, 24_900, 100) - 1
                products.append(
                    Product(
                        product_id=f"sku-{len(products) + 1:04d}",
                        name=f"{adjective} {noun}",
                        category=category,
                        price=Decimal(cents).scaleb(-2),
                    )
                )
    return tuple(products)


def day_offset(rng: random.Random, first_day: int, last_day: int) -> int:
    """An instant between `first_day` and `last_day` whole days ago (inclusive), never
    within `MARGIN` of a day boundary."""
    day = rng.randint(first_day, last_day)
    return day * DAY + rng.randint(MARGIN, DAY - MARGIN)


def clear_of_midnight(ago: int) -> int:
    """`ago` moved, if need be, to within the same day but at least `MARGIN` from its
    boundaries. A rule's window ("in last 14 days") moves with the clock, and an event a
    few minutes short of a whole number of days ago would leave it while the demo runs:
    a segment's size would then depend on how long the run took."""
    day, rest = divmod(ago, DAY)
    return day * DAY + min(max(rest, MARGIN), DAY - MARGIN)


def people(count: int, seed: int) -> list[Customer]:
    if count < 1:
        raise ValueError(f"customers must be at least 1, not {count}")
    rng = random.Random(f"{seed}:people")
    names = [a for a, _ in ARCHETYPES]
    weights = [w for _, w in ARCHETYPES]
    result = []
    for n in range(count):
        archetype = rng.choices(names, weights)[0]
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        country, city, locale, zone = rng.choice(PLACES)
        signup = day_offset(rng, 1, 13) if archetype == "new" else day_offset(rng, 150, 360)
        result.append(
            Customer(
                user_id=f"c{n + 1:06d}",
                anonymous_id=_digest(f"{seed}:anon:{n}")[:20],
                email=f"{_ascii(first)}.{_ascii(last)}.{n + 1}@example.com",
                first_name=first,
                last_name=last,
                country=country,
                city=city,
                locale=locale,
                timezone=zone,
                archetype=archetype,
                subscribed=rng.random() < 0.9,
                signup_ago=signup,
            )
        )
    return result


def _ascii(name: str) -> str:
    return name.lower().translate(str.maketrans("éëáí", "eeai"))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class _History:
    """Builds one customer's events; the random stream is the customer's own."""

    def __init__(self, customer: Customer, products: tuple[Product, ...], seed: int) -> None:
        self.customer = customer
        self.products = products
        self.rng = random.Random(f"{seed}:history:{customer.user_id}")
        self.events: list[DemoEvent] = []
        self.favourite = self.rng.choice(CATEGORIES)
        self.orders = 0

    def add(self, ago: int, kind: str, *, identified: bool = True, **fields: Any) -> None:
        c = self.customer
        number = len(self.events)
        self.events.append(
            DemoEvent(
                message_id=f"demo-{c.user_id}-{number:04d}",
                type=kind,
                ago=max(ago, MARGIN),
                user_id=c.user_id if identified else "",
                anonymous_id=c.anonymous_id,
                **fields,
            )
        )

    def pick(self) -> Product:
        if self.rng.random() < 0.6:
            choices = [p for p in self.products if p.category == self.favourite]
            return self.rng.choice(choices)
        return self.rng.choice(self.products)

    def browse(self, ago: int, *, identified: bool = True, views: int = 3) -> list[Product]:
        """A session: a page, a category list, some product views (starting clear of
        midnight, so that the whole session is; `day_offset` times already are)."""
        ago = clear_of_midnight(ago)
        seen = []
        self.add(ago, "page", identified=identified, name="Home", category="shop")
        for step in range(views):
            product = self.pick()
            seen.append(product)
            self.add(
                ago - 60 * (step + 1),
                "track",
                identified=identified,
                event="Product Viewed",
                properties=_product(product),
            )
        return seen

    def cart(self, ago: int, products: list[Product], *, checkout: bool) -> None:
        for step, product in enumerate(products):
            properties = {**_product(product), "quantity": 1, "cart_id": f"cart-{ago}"}
            self.add(ago - 30 * step, "track", event="Product Added", properties=properties)
        if checkout:
            value = sum((p.price for p in products), Decimal(0))
            self.add(
                ago - 300,
                "track",
                event="Checkout Started",
                properties={
                    "checkout_id": f"co-{self.customer.user_id}-{ago}",
                    "value": str(value),
                    "currency": CURRENCY,
                    "products": [_item(p) for p in products],
                },
            )

    def order(self, ago: int) -> None:
        products = self.browse(ago, views=self.rng.randint(1, 3))
        basket = products[: self.rng.randint(1, len(products))]
        self.cart(ago - 400, basket, checkout=True)
        revenue = sum((p.price for p in basket), Decimal(0))
        self.orders += 1
        self.add(
            ago - 900,
            "track",
            event="Order Completed",
            properties={
                "order_id": f"o-{self.customer.user_id}-{self.orders:03d}",
                "revenue": str(revenue),
                "total": str(revenue),
                "currency": CURRENCY,
                "products": [_item(p) for p in basket],
            },
        )

    def play(self) -> list[DemoEvent]:
        c, rng = self.customer, self.rng
        signup = c.signup_ago
        # Anonymous browsing before signing up, then the identify that stitches it.
        self.browse(signup + rng.randint(2, 5) * HOUR, identified=False, views=2)
        self.add(
            signup,
            "identify",
            traits={
                "email": c.email,
                "first_name": c.first_name,
                "last_name": c.last_name,
                "country": c.country,
                "city": c.city,
                # Seconds ago; the loader turns it into a timestamp (`TIME_TRAITS`).
                "signup_date": signup,
            },
        )
        self.add(signup - 60, "track", event="Signed Up", properties={"method": "email"})
        getattr(self, f"_{c.archetype}")()
        self._newsletters()
        self.events.sort(key=lambda e: -e.ago)
        return self.events

    # ----------------------------------------------------------------- archetypes
    def _loyal(self) -> None:
        for _ in range(self.rng.randint(3, 5)):
            self.order(day_offset(self.rng, 1, 27))
        for _ in range(self.rng.randint(2, 6)):
            self.order(day_offset(self.rng, 35, 300))
        for _ in range(self.rng.randint(2, 5)):
            self.browse(day_offset(self.rng, 1, 30), views=self.rng.randint(1, 4))

    def _repeat(self) -> None:
        for _ in range(self.rng.randint(2, 4)):
            self.order(day_offset(self.rng, 10, 140))
        for _ in range(self.rng.randint(1, 4)):
            self.browse(day_offset(self.rng, 1, 60), views=self.rng.randint(1, 3))

    def _casual(self) -> None:
        for _ in range(self.rng.randint(2, 6)):
            self.browse(day_offset(self.rng, 1, 29), views=self.rng.randint(1, 3))
        if self.rng.random() < 0.5:
            self.order(day_offset(self.rng, 20, 85))

    def _cart(self) -> None:
        self._casual()
        products = self.browse(day_offset(self.rng, 1, 2), views=self.rng.randint(1, 3))
        ago = self.events[-1].ago - 120
        self.cart(ago, products[:2], checkout=self.rng.random() < 0.6)

    def _browser(self) -> None:
        # The same product, looked at again and again, never bought.
        product = self.pick()
        first = self.rng.randint(10, 13)
        for day in (first, first - 1, first - 2):
            ago = day * DAY + self.rng.randint(MARGIN, DAY - MARGIN)
            self.add(ago, "page", name="Home", category="shop")
            self.add(ago - 60, "track", event="Product Viewed", properties=_product(product))

    def _lapsed(self) -> None:
        for _ in range(self.rng.randint(1, 3)):
            self.order(day_offset(self.rng, 95, 140))
        for _ in range(self.rng.randint(1, 3)):
            self.browse(day_offset(self.rng, 92, 145), views=self.rng.randint(1, 3))

    def _lapsing(self) -> None:
        # Their last visit was 89 days ago: they become Inactive in the hours after the
        # load, which the win-back journey picks up while the demo serves.
        self.order(day_offset(self.rng, 150, 300))
        self.browse(day_offset(self.rng, 89, 89), views=1)

    def _new(self) -> None:
        self.browse(self.customer.signup_ago - HOUR, views=self.rng.randint(1, 4))

    def _newsletters(self) -> None:
        c = self.customer
        if not c.subscribed:
            return
        opens, clicks = ENGAGEMENT[c.archetype]
        for newsletter, days in NEWSLETTERS:
            sent = days * DAY + 9 * HOUR + 600
            if sent >= c.signup_ago:
                continue
            send_id = f"hist-{newsletter}-{c.user_id}"
            base = {"send_id": send_id, "campaign": newsletter}
            self.add(sent, "track", event="Email Sent", properties=base)
            if self.rng.random() >= opens:
                continue
            opened = sent - self.rng.randint(600, 8 * HOUR)
            self.add(opened, "track", event="Email Opened", properties={"send_id": send_id})
            if self.rng.random() < clicks:
                link = f"https://shop.example/{newsletter}"
                self.add(
                    opened - 120,
                    "track",
                    event="Email Link Clicked",
                    properties={"send_id": send_id, "url": link},
                )


def _product(product: Product) -> dict[str, Any]:
    return {
        "product_id": product.product_id,
        "name": product.name,
        "category": product.category,
        "price": str(product.price),
        "currency": CURRENCY,
    }


def _item(product: Product) -> dict[str, Any]:
    return {
        "product_id": product.product_id,
        "name": product.name,
        "category": product.category,
        "price": str(product.price),
        "quantity": 1,
    }


@dataclass(frozen=True)
class DemoShop:
    """The generated shop: its catalogue, its customers, and their histories on demand."""

    seed: int
    products: tuple[Product, ...]
    customers: tuple[Customer, ...]

    def history(self, customer: Customer) -> list[DemoEvent]:
        """One customer's events, oldest first (computed again on every call)."""
        return _History(customer, self.products, self.seed).play()

    def histories(self) -> Iterator[tuple[Customer, list[DemoEvent]]]:
        for customer in self.customers:
            yield customer, self.history(customer)


def generate(customers: int = 10_000, seed: int = 2026) -> DemoShop:
    """The demo shop with `customers` people; the same arguments give the same shop."""
    return DemoShop(seed, catalogue(seed), tuple(people(customers, seed)))

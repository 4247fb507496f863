"""Deterministic generator of the marketplace dataset, its planted traps and its ground truth.

Everything comes from one `random.Random(seed)`: the same seed and scale give the same
rows, byte for byte. The ground truth is computed from what the generator planted (the
true confirmation instant, which payment rows are replays, who is deleted), never by
querying the generated rows.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from raw_layer.money import Cents, to_usd_cents

from grader.dataset.truth import build_truth

NEW_YORK = ZoneInfo("America/New_York")

CANONICAL_SEED = 42
VARIANT_SEED = 1337


@dataclass(frozen=True)
class Scale:
    users: int
    products: int
    orders: int
    reviews: int


SCALES: dict[str, Scale] = {
    "small": Scale(users=300, products=400, orders=600, reviews=300),
    "default": Scale(users=3000, products=4000, orders=6000, reviews=4000),
}

# Trap rates (exercise contract §2); tests check the generated data against these.
RATES = {
    "payment_replayed": 0.06,      # share of payment events delivered more than once
    "user_deleted": 0.04,          # deleted_at set, is_active false
    "user_suspended": 0.02,        # is_active false, deleted_at NULL: not deleted
    "user_country_null": 0.04,
    "product_future_updated": 0.02,
    "seller_tier_stale": 0.10,     # users.seller_tier lags the SCD2 history
    "order_on_dst_day": 0.02,      # orders created on a US DST change day
}

GMV_STATUSES = ("confirmed", "processing", "shipped", "delivered")
CONFIRMED_STATUSES = GMV_STATUSES + ("refunded",)

COUNTRIES = ["US", "GB", "DE", "FR", "ES", "IT", "NL", "CA", "AU", "IE"]
COUNTRY_WEIGHTS = [30, 15, 12, 10, 7, 7, 6, 6, 4, 3]
EURO_COUNTRIES = {"DE", "FR", "ES", "IT", "NL", "IE"}
CITIES = {
    "US": ["New York", "Austin", "Seattle", "Chicago"], "GB": ["London", "Leeds", "Bristol"],
    "DE": ["Berlin", "Munich", "Hamburg"], "FR": ["Paris", "Lyon"], "ES": ["Madrid", "Valencia"],
    "IT": ["Milan", "Rome"], "NL": ["Amsterdam", "Utrecht"], "CA": ["Toronto", "Montreal"],
    "AU": ["Sydney", "Melbourne"], "IE": ["Dublin", "Cork"],
}
FIRST_NAMES = ["Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kira",
               "Liam", "Maya", "Noah", "Olga", "Pablo", "Quinn", "Rosa", "Sami", "Tara", "Uma", "Victor",
               "Wen", "Ximena", "Yusuf", "Zoe"]
LAST_NAMES = ["Adams", "Berg", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Hughes", "Ito", "Jansen",
              "Kowalski", "Lopez", "Murphy", "Nakamura", "Okafor", "Patel", "Rossi", "Schmidt", "Tanaka",
              "Weber"]
TIERS = ["bronze", "silver", "gold", "platinum"]
TAXONOMY: dict[str, dict[str, list[str]]] = {
    "Electronics": {"Phones": ["Smartphones", "Cases"], "Computers": ["Laptops", "Monitors", "Keyboards"],
                    "Audio": ["Headphones", "Speakers"]},
    "Fashion": {"Women": ["Dresses", "Shoes"], "Men": ["Shirts", "Jackets"], "Accessories": ["Bags", "Watches"]},
    "Home & Garden": {"Furniture": ["Chairs", "Tables"], "Kitchen": ["Cookware"], "Garden": []},
    "Sports": {"Cycling": ["Bikes", "Helmets"], "Running": [], "Fitness": ["Weights"]},
    "Books": {"Fiction": [], "Non-fiction": ["History", "Science"]},
    "Toys": {"Board games": [], "Building sets": []},
    "Collectibles": {"Coins": [], "Vinyl records": [], "Trading cards": []},
}
PROVIDERS = ["stripe", "adyen", "paypal"]
PROVIDER_WEIGHTS = [60, 25, 15]


@dataclass
class Dataset:
    seed: int
    scale: str
    extracted_at: datetime
    rows: dict[str, list[dict[str, Any]]]
    truth: dict[str, Any] = field(default_factory=dict)


def us_dst_change_days(year: int) -> list[date]:
    """Second Sunday of March and first Sunday of November (US rules since 2007)."""
    march = date(year, 3, 8)
    november = date(year, 11, 1)
    return [march + timedelta(days=(6 - march.weekday()) % 7), november + timedelta(days=(6 - november.weekday()) % 7)]


def is_ambiguous_or_skipped(local: datetime) -> bool:
    """True for New York wall times in the repeated (or skipped) DST hour: no single true instant."""
    first = local.replace(fold=0, tzinfo=NEW_YORK)
    second = local.replace(fold=1, tzinfo=NEW_YORK)
    if first.utcoffset() != second.utcoffset():
        return True
    round_trip = first.astimezone(UTC).astimezone(NEW_YORK).replace(tzinfo=None)
    return round_trip != local


class _Generator:
    def __init__(self, seed: int, scale_name: str):
        if scale_name not in SCALES:
            raise ValueError(f"unknown scale {scale_name!r}; choose one of {', '.join(SCALES)}")
        self.rng = random.Random(seed)
        self.seed = seed
        self.scale_name = scale_name
        self.scale = SCALES[scale_name]
        # The extraction time moves with the seed so that a hard-coded cut-off does not generalise.
        self.extracted_at = datetime(2025, 11, 14, 6, 0, tzinfo=UTC) + timedelta(days=seed % 19, minutes=seed % 53)
        self.window_start = self.extracted_at - timedelta(days=460)
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.planted: dict[str, Any] = {}

    # --- primitives -------------------------------------------------------------------
    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def instant_between(self, start: datetime, end: datetime) -> datetime:
        span = max(int((end - start).total_seconds()), 1)
        return start + timedelta(seconds=self.rng.randrange(span))

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def pick_share(self, items: list[Any], share: float) -> set[int]:
        """Indices of exactly round(share * len) items: trap rates are exact, not just expected."""
        count = round(len(items) * share)
        return set(self.rng.sample(range(len(items)), count))

    def money(self, low: float, high: float) -> Cents:
        return self.rng.randrange(int(low * 100), int(high * 100) + 1)

    # --- tables -----------------------------------------------------------------------
    def categories(self) -> None:
        created = self.window_start - timedelta(days=700)
        levels: list[list[tuple[str, str | None]]] = [[], [], []]
        for top, children in TAXONOMY.items():
            levels[0].append((top, None))
            for child, grandchildren in children.items():
                levels[1].append((child, top))
                levels[2].extend((g, child) for g in grandchildren)
        rows, ids = [], {}
        for depth, level in enumerate(levels, start=1):
            level = list(level)
            self.rng.shuffle(level)  # serial ids differ between seeds
            for name, parent in level:
                ids[name] = len(rows) + 1
                rows.append({
                    "id": ids[name], "name": name, "slug": name.lower().replace(" & ", "-").replace(" ", "-"),
                    "parent_id": ids[parent] if parent else None, "level": depth,
                    "is_active": not (depth == 3 and self.chance(0.05)),
                    "created_at": created + timedelta(hours=len(rows)),
                })
        self.rows["categories"] = rows

    def users(self) -> None:
        n = self.scale.users
        start = self.window_start - timedelta(days=500)
        rows = []
        for i in range(n):
            created = self.instant_between(start, self.extracted_at - timedelta(days=30))
            first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
            user_type = self.rng.choices(["buyer", "seller", "both"], [68, 16, 16])[0]
            rows.append({
                "id": self.uuid(), "email": f"{first}.{last}.{i}@example.com".lower(),
                "username": f"{first.lower()}{last.lower()[:3]}{i}", "user_type": user_type,
                "first_name": first, "last_name": last,
                "country_code": self.rng.choices(COUNTRIES, COUNTRY_WEIGHTS)[0],
                "seller_tier": None,
                "seller_rating": self.rng.randrange(250, 501) if user_type != "buyer" else None,
                "created_at": created, "updated_at": self.instant_between(created, self.extracted_at - timedelta(days=1)),
                "deleted_at": None, "is_active": True,
            })
        deleted = self.pick_share(rows, RATES["user_deleted"])
        remaining = [i for i in range(n) if i not in deleted]
        suspended = set(self.rng.sample(remaining, round(n * RATES["user_suspended"])))
        for i in deleted:
            rows[i]["deleted_at"] = self.instant_between(rows[i]["updated_at"], self.extracted_at - timedelta(hours=1))
            rows[i]["updated_at"] = rows[i]["deleted_at"]
            rows[i]["is_active"] = False
        for i in suspended:
            rows[i]["is_active"] = False
        for i in self.pick_share(rows, RATES["user_country_null"]):
            rows[i]["country_code"] = None
        self.rows["users"] = rows

    def seller_tiers(self) -> None:
        sellers = [u for u in self.rows["users"] if u["user_type"] != "buyer"]
        history = []
        for user in sellers:
            changes = self.rng.choices([1, 2, 3, 4], [25, 35, 25, 15])[0]
            tier = self.rng.choice([0, 0, 1])
            start = user["created_at"]
            moments = sorted(self.instant_between(start, self.extracted_at - timedelta(days=2)) for _ in range(changes - 1))
            periods = []
            for k in range(changes):
                if k:
                    step = self.rng.choice([1, 1, -1]) if 0 < tier < 3 else (1 if tier == 0 else -1)
                    tier += step
                    reason = "promotion" if step > 0 else "demotion"
                else:
                    reason = "signup"
                periods.append((TIERS[tier], start if k == 0 else moments[k - 1], reason))
            for k, (name, since, reason) in enumerate(periods):
                until = periods[k + 1][1] if k + 1 < len(periods) else None
                history.append({"user_id": user["id"], "tier": name, "effective_from": since, "effective_to": until,
                                "is_current": until is None, "change_reason": reason, "created_at": since})
            user["seller_tier"] = periods[-1][0]
            user["_previous_tier"] = periods[-2][0] if len(periods) > 1 else None
        stale_candidates = [u for u in sellers if u["_previous_tier"]]
        for i in self.pick_share(stale_candidates, RATES["seller_tier_stale"] * len(sellers) / max(len(stale_candidates), 1)):
            stale_candidates[i]["seller_tier"] = stale_candidates[i]["_previous_tier"]
        for user in sellers:
            del user["_previous_tier"]
        history.sort(key=lambda r: (r["created_at"], r["user_id"]))
        self.rows["seller_tier_history"] = [{"id": i, **r} for i, r in enumerate(history, start=1)]

    def products(self) -> None:
        sellers = [u for u in self.rows["users"] if u["user_type"] != "buyer"]
        categories = [c for c in self.rows["categories"] if c["level"] > 1]
        rows = []
        for _ in range(self.scale.products):
            seller = self.rng.choice(sellers)
            category = self.rng.choice(categories)
            created = self.instant_between(max(seller["created_at"], self.window_start - timedelta(days=200)),
                                           self.extracted_at - timedelta(days=20))
            status = self.rng.choices(["active", "paused", "sold_out", "draft", "deleted"], [70, 8, 8, 7, 7])[0]
            adjective = self.rng.choice(["Vintage", "New", "Refurbished", "Handmade", "Classic", "Compact"])
            rows.append({
                "id": self.uuid(), "seller_id": seller["id"], "category_id": category["id"],
                "title": f"{adjective} {category['name']} #{self.rng.randrange(100, 999)}",
                "description": f"{adjective.lower()} item in good condition",
                "price_amount": self.rng.choice([self.money(5, 60), self.money(20, 300), self.money(100, 900)]),
                "price_currency": self.rng.choices(["USD", "EUR", "GBP"], [50, 30, 20])[0],
                "quantity_available": 0 if status == "sold_out" else self.rng.randrange(1, 50),
                "status": status,
                "tags": sorted(self.rng.sample(["sale", "new", "gift", "eco", "rare", "bundle"], self.rng.randrange(0, 3))),
                "attributes": {"condition": self.rng.choice(["new", "used", "refurbished"]),
                               "colour": self.rng.choice(["black", "white", "red", "blue", "green"])},
                "created_at": created,
                "updated_at": self.instant_between(created, self.extracted_at - timedelta(minutes=5)),
                "published_at": None if status == "draft" else created + timedelta(minutes=self.rng.randrange(1, 600)),
            })
        for i in self.pick_share(rows, RATES["product_future_updated"]):
            rows[i]["updated_at"] = self.extracted_at + timedelta(days=self.rng.randrange(1, 120),
                                                                  seconds=self.rng.randrange(86400))
        self.rows["products"] = rows

    def _confirmation(self, created: datetime) -> tuple[datetime, datetime]:
        """(true instant, New York wall time) of a confirmation, avoiding the DST fold/gap hour."""
        instant = created + timedelta(seconds=self.rng.randrange(60, 3 * 3600))
        while is_ambiguous_or_skipped(instant.astimezone(NEW_YORK).replace(tzinfo=None)):
            instant += timedelta(hours=1)
        return instant, instant.astimezone(NEW_YORK).replace(tzinfo=None)

    def orders(self) -> None:
        buyers = [u for u in self.rows["users"] if u["user_type"] != "seller"]
        products = sorted((p for p in self.rows["products"] if p["status"] != "draft"), key=lambda p: p["created_at"])
        product_created = [p["created_at"] for p in products]
        dst_days = [d for y in (2024, 2025, 2026) for d in us_dst_change_days(y)
                    if self.window_start.date() < d < (self.extracted_at - timedelta(days=15)).date()]
        n = self.scale.orders
        on_dst_day = self.pick_share(list(range(n)), RATES["order_on_dst_day"])
        orders, items = [], []
        limit = self.extracted_at - timedelta(minutes=30)
        for i in range(n):
            buyer = self.rng.choice(buyers)
            if i in on_dst_day:
                day = self.rng.choice(dst_days)
                created = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=self.rng.randrange(86400))
            else:
                created = self.instant_between(max(self.window_start, buyer["created_at"]), limit)
            country = buyer["country_code"] or self.rng.choices(COUNTRIES, COUNTRY_WEIGHTS)[0]
            if self.chance(0.1):
                country = self.rng.choices(COUNTRIES, COUNTRY_WEIGHTS)[0]
            currency = "GBP" if country == "GB" else "EUR" if country in EURO_COUNTRIES else "USD"
            if self.chance(0.08):
                currency = self.rng.choice(["USD", "EUR", "GBP"])
            target = self.rng.choices(["pending", "confirmed", "processing", "shipped", "delivered", "cancelled",
                                       "refunded"], [7, 6, 6, 10, 49, 13, 9])[0]
            order = {
                "id": self.uuid(), "order_number": "", "buyer_id": buyer["id"],
                "status": "pending", "subtotal_amount": 0, "shipping_amount": 0, "tax_amount": 0,
                "discount_amount": 0, "total_amount": 0, "currency": currency, "shipping_country": country,
                "shipping_city": self.rng.choice(CITIES[country]),
                "shipping_postal_code": None if self.chance(0.03) else f"{self.rng.randrange(10000, 99999)}",
                "created_at": created, "updated_at": created, "confirmed_at": None, "shipped_at": None,
                "delivered_at": None, "_confirmed_utc": None, "_cancelled_at": None, "_refunded_at": None,
            }
            self._advance(order, target, limit)
            order_items = self._items(order, products, product_created)
            subtotal = sum(it["total_price"] for it in order_items)
            shipping = 0 if self.chance(0.3) else self.money(3, 20)
            tax = subtotal * self.rng.choice([0, 8, 10, 20]) // 100
            discount = 0 if self.chance(0.75) else min(subtotal * self.rng.choice([5, 10, 15]) // 100, subtotal)
            order.update(subtotal_amount=subtotal, shipping_amount=shipping, tax_amount=tax, discount_amount=discount,
                         total_amount=subtotal + shipping + tax - discount)
            orders.append(order)
            items.extend(order_items)
        orders.sort(key=lambda o: (o["created_at"], o["id"]))
        for number, order in enumerate(orders, start=1):
            order["order_number"] = f"ORD-{order['created_at']:%Y%m%d}-{number:05d}"
        self.rows["orders"] = orders
        self.rows["order_items"] = items

    def _advance(self, order: dict[str, Any], target: str, limit: datetime) -> None:
        """Walk the order through its lifecycle; stop early where a step would pass the extraction time."""
        created = order["created_at"]
        if target == "pending":
            return
        if target == "cancelled" and self.chance(0.6):
            at = created + timedelta(minutes=self.rng.randrange(5, 2000))
            if at < limit:
                order.update(status="cancelled", updated_at=at, _cancelled_at=at)
            return
        instant, wall = self._confirmation(created)
        if instant >= limit:
            return
        order.update(status="confirmed", confirmed_at=wall, _confirmed_utc=instant, updated_at=instant)
        if target == "cancelled":
            at = instant + timedelta(hours=self.rng.randrange(1, 48))
            if at < limit:
                order.update(status="cancelled", updated_at=at, _cancelled_at=at)
            return
        steps = ["processing", "shipped", "delivered"]
        if target == "refunded":
            steps = ["processing", "shipped", "delivered", "refunded"]
        elif target in steps:
            steps = steps[: steps.index(target) + 1]
        else:
            steps = []
        at = instant
        for step in steps:
            at = at + timedelta(hours=self.rng.randrange(2, 96), seconds=self.rng.randrange(3600))
            if at >= limit:
                break
            order["status"] = step
            order["updated_at"] = at
            if step == "shipped":
                order["shipped_at"] = at
            elif step == "delivered":
                order["delivered_at"] = at
            elif step == "refunded":
                order["_refunded_at"] = at

    def _items(self, order: dict[str, Any], products: list[dict[str, Any]], created: list[datetime]) -> list[dict[str, Any]]:
        import bisect

        available = max(bisect.bisect_left(created, order["created_at"]), 1)
        rows = []
        for _ in range(self.rng.choices([1, 2, 3, 4, 5], [35, 28, 18, 12, 7])[0]):
            product = products[self.rng.randrange(available)]
            unit = max(to_usd_cents(product["price_amount"], product["price_currency"]) * 100
                       // to_usd_cents(100, order["currency"]), 1)
            quantity = self.rng.choices([1, 2, 3], [75, 18, 7])[0]
            rows.append({
                "id": self.uuid(), "order_id": order["id"], "product_id": product["id"],
                "seller_id": product["seller_id"], "quantity": quantity, "unit_price": unit,
                "total_price": unit * quantity, "currency": order["currency"], "product_title": product["title"],
                "product_snapshot": {"title": product["title"], "category_id": product["category_id"],
                                     "price_amount": f"{product['price_amount'] / 100:.2f}",
                                     "price_currency": product["price_currency"]},
                "created_at": order["created_at"],
            })
        return rows

    def payments(self) -> None:
        events = []
        for order in self.rows["orders"]:
            created = order["created_at"]
            paid_at = created + timedelta(seconds=self.rng.randrange(5, 50))
            plan: list[tuple[str, datetime]] = []
            if order["status"] == "pending":
                if self.chance(0.4):
                    plan.append(("pending", paid_at))
            elif order["_confirmed_utc"] is None:  # cancelled before confirmation
                if self.chance(0.5):
                    plan.append(("failed", paid_at))
            else:
                if self.chance(0.08):
                    plan.append(("failed", paid_at - timedelta(seconds=3)))
                plan.append(("completed", paid_at))
                if order["_refunded_at"]:
                    plan.append(("refunded", order["_refunded_at"]))
                elif order["_cancelled_at"]:
                    plan.append(("refunded", order["_cancelled_at"]))
                elif order["status"] == "delivered" and self.chance(0.02):
                    plan.append(("disputed", order["delivered_at"] + timedelta(hours=self.rng.randrange(1, 48))))
            provider = self.rng.choices(PROVIDERS, PROVIDER_WEIGHTS)[0]
            for status, at in plan:
                at = min(at, self.extracted_at - timedelta(minutes=20))
                amount = order["total_amount"]
                fee = amount // 10
                delivered = at + timedelta(seconds=self.rng.randrange(1, 30))
                events.append({
                    "id": self.uuid(), "order_id": order["id"], "payment_provider": provider,
                    "payment_provider_id": f"{provider[:2]}_{self.rng.getrandbits(64):016x}",
                    "amount": amount, "currency": order["currency"], "platform_fee": fee, "seller_payout": amount - fee,
                    "status": status, "created_at": delivered + timedelta(seconds=self.rng.randrange(0, 3)),
                    "processed_at": None if status == "pending" else at,
                    "event_id": f"evt_{self.rng.getrandbits(96):024x}", "event_timestamp": delivered,
                })
        replayed = self.pick_share(events, RATES["payment_replayed"])
        rows = []
        for i, event in enumerate(events):
            rows.append(event)
            if i in replayed:
                shifted = event
                for _ in range(self.rng.choices([1, 2, 3], [60, 30, 10])[0]):
                    gap = timedelta(seconds=self.rng.randrange(2, 90))
                    shifted = {**shifted, "id": self.uuid(), "created_at": shifted["created_at"] + gap,
                               "event_timestamp": shifted["event_timestamp"] + gap}
                    rows.append(shifted)
        rows.sort(key=lambda r: (r["created_at"], r["id"]))
        self.planted["replayed_event_ids"] = sorted(events[i]["event_id"] for i in replayed)
        self.rows["payments"] = rows

    def reviews(self) -> None:
        orders = {o["id"]: o for o in self.rows["orders"]}
        delivered_items = [it for it in self.rows["order_items"] if orders[it["order_id"]]["delivered_at"]]
        products = self.rows["products"]
        users = self.rows["users"]
        limit = self.extracted_at - timedelta(hours=2)
        rows = []
        for _ in range(self.scale.reviews):
            if delivered_items and self.chance(0.85):
                item = self.rng.choice(delivered_items)
                order = orders[item["order_id"]]
                product_id, reviewer, item_id, since = item["product_id"], order["buyer_id"], item["id"], order["delivered_at"]
            else:
                product = self.rng.choice(products)
                product_id, reviewer, item_id = product["id"], self.rng.choice(users)["id"], None
                since = max(product["created_at"], self.window_start)
            created = self.instant_between(since, limit)
            status = self.rng.choices(["approved", "pending", "rejected", "flagged"], [75, 10, 8, 7])[0]
            moderated = None if status == "pending" else min(created + timedelta(hours=self.rng.randrange(1, 72)), limit)
            rating = self.rng.choices([1, 2, 3, 4, 5], [5, 7, 15, 33, 40])[0]
            rows.append({
                "id": self.uuid(), "product_id": product_id, "order_item_id": item_id, "reviewer_id": reviewer,
                "rating": rating, "title": self.rng.choice(["Great", "As described", "Meh", "Fast shipping", None]),
                "body": self.rng.choice(["Would buy again.", "Not what I expected.", "Works fine.", None]),
                "is_verified_purchase": item_id is not None, "helpful_votes": self.rng.randrange(0, 40),
                "status": status, "moderated_at": moderated, "created_at": created,
                "updated_at": moderated or created,
            })
        self.rows["reviews"] = rows

    def event_log(self) -> None:
        events = []
        for order in self.rows["orders"]:
            events.append(("order.created", "order", order["id"], order["created_at"], {"status": "pending"}))
            if order["_confirmed_utc"]:
                events.append(("order.status_changed", "order", order["id"], order["_confirmed_utc"], {"status": "confirmed"}))
            if order["status"] not in ("pending", "confirmed"):
                events.append(("order.status_changed", "order", order["id"], order["updated_at"], {"status": order["status"]}))
        for payment in self.rows["payments"]:
            events.append(("payment.received", "payment", payment["id"], payment["event_timestamp"],
                           {"event_id": payment["event_id"], "status": payment["status"]}))
        for product in self.rows["products"]:
            if product["updated_at"] <= self.extracted_at and self.chance(0.5):
                events.append(("product.updated", "product", product["id"], product["updated_at"],
                               {"status": product["status"]}))
        limit = self.extracted_at - timedelta(seconds=1)
        rows = []
        for event_type, entity_type, entity_id, at, data in events:
            lag = timedelta(seconds=self.rng.randrange(1, 600)) if self.chance(0.93) else \
                timedelta(seconds=self.rng.randrange(600, 6 * 3600))
            received = min(at + lag, limit)
            rows.append({"event_type": event_type, "entity_type": entity_type, "entity_id": entity_id,
                         "event_data": data, "event_timestamp": at, "received_at": received,
                         "processed": received < self.extracted_at - timedelta(hours=1)})
        rows.sort(key=lambda r: (r["received_at"], r["entity_id"], r["event_type"]))
        self.rows["event_log"] = [{"id": i, **r} for i, r in enumerate(rows, start=1)]

    def generate(self) -> Dataset:
        self.categories()
        self.users()
        self.seller_tiers()
        self.products()
        self.orders()
        self.payments()
        self.reviews()
        self.event_log()
        truth = build_truth(self.rows, self.extracted_at, self.planted)
        for order in self.rows["orders"]:  # drop the generator's private knowledge from the rows
            for key in [k for k in order if k.startswith("_")]:
                del order[key]
        truth["dataset"] = {"seed": self.seed, "scale": self.scale_name}
        return Dataset(self.seed, self.scale_name, self.extracted_at, self.rows, truth)


def generate(seed: int = CANONICAL_SEED, scale: str = "default") -> Dataset:
    """The dataset for (seed, scale): rows per source table and the ground truth."""
    return _Generator(seed, scale).generate()

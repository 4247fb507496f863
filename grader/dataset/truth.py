"""Ground truth: what a correct set of marts contains, from what the generator planted.

Built from the generator's own objects (including private knowledge such as the true UTC
instant behind each New York wall-clock `confirmed_at`), never by running SQL over the
generated rows. JSON-ready: money as decimal strings, instants as ISO-8601 UTC strings.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from raw_layer.money import fmt, to_usd_cents

GMV_STATUSES = ("confirmed", "processing", "shipped", "delivered")


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_truth(rows: dict[str, list[dict[str, Any]]], extracted_at: datetime, planted: dict[str, Any]) -> dict[str, Any]:
    categories = {c["id"]: c for c in rows["categories"]}

    def top_level(category_id: int) -> str:
        category = categories[category_id]
        while category["parent_id"] is not None:
            category = categories[category["parent_id"]]
        return category["name"]

    current_tier = {h["user_id"]: h["tier"] for h in rows["seller_tier_history"] if h["is_current"]}

    users = {
        u["id"]: {
            "user_type": u["user_type"],
            "deleted": u["deleted_at"] is not None,
            "suspended": u["deleted_at"] is None and not u["is_active"],
            "country_code": u["country_code"],
            "current_seller_tier": current_tier.get(u["id"]),
            "stale_seller_tier": u["seller_tier"] != current_tier.get(u["id"]),
        }
        for u in rows["users"]
    }

    products = {
        p["id"]: {
            "seller_id": p["seller_id"],
            "category_id": p["category_id"],
            "top_level_category": top_level(p["category_id"]),
            "price_amount": fmt(p["price_amount"]),
            "price_currency": p["price_currency"],
            "price_usd": fmt(to_usd_cents(p["price_amount"], p["price_currency"])),
            "updated_at": iso(p["updated_at"]),
            "future_updated_at": p["updated_at"] > extracted_at,
        }
        for p in rows["products"]
    }

    orders = {
        o["id"]: {
            "buyer_id": o["buyer_id"],
            "status": o["status"],
            "created_at": iso(o["created_at"]),
            "confirmed_at_utc": iso(o["_confirmed_utc"]),
            "confirmed_at_new_york": o["confirmed_at"].strftime("%Y-%m-%dT%H:%M:%S") if o["confirmed_at"] else None,
            "total_amount": fmt(o["total_amount"]),
            "currency": o["currency"],
            "total_amount_usd": fmt(to_usd_cents(o["total_amount"], o["currency"])),
        }
        for o in rows["orders"]
    }

    deliveries: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in rows["payments"]:
        deliveries[p["event_id"]].append(p)
    payment_events = {}
    for event_id, copies in deliveries.items():
        first = min(copies, key=lambda r: r["event_timestamp"])
        payment_events[event_id] = {
            "order_id": first["order_id"],
            "status": first["status"],
            "amount": fmt(first["amount"]),
            "currency": first["currency"],
            "amount_usd": fmt(to_usd_cents(first["amount"], first["currency"])),
            "event_timestamp_first": iso(first["event_timestamp"]),
            "event_timestamp_last": iso(max(r["event_timestamp"] for r in copies)),
            "deliveries": len(copies),
        }

    order_by_id = {o["id"]: o for o in rows["orders"]}
    product_by_id = {p["id"]: p for p in rows["products"]}
    daily: dict[tuple[str, str, str], dict[str, Any]] = {}
    seller_gmv: dict[str, int] = defaultdict(int)
    seller_orders: dict[str, set[str]] = defaultdict(set)
    seller_items: dict[str, int] = defaultdict(int)
    for item in rows["order_items"]:
        order = order_by_id[item["order_id"]]
        if order["status"] not in GMV_STATUSES:
            continue
        usd = to_usd_cents(item["total_price"], item["currency"])
        key = (order["created_at"].astimezone(UTC).date().isoformat(), order["shipping_country"],
               top_level(product_by_id[item["product_id"]]["category_id"]))
        cell = daily.setdefault(key, {"gmv_cents": 0, "orders": set(), "items": 0})
        cell["gmv_cents"] += usd
        cell["orders"].add(order["id"])
        cell["items"] += 1
        seller_gmv[item["seller_id"]] += usd
        seller_orders[item["seller_id"]].add(order["id"])
        seller_items[item["seller_id"]] += 1

    ratings: dict[str, list[int]] = defaultdict(list)
    for review in rows["reviews"]:
        if review["status"] == "approved":
            ratings[product_by_id[review["product_id"]]["seller_id"]].append(review["rating"])

    sellers = {
        u["id"]: {
            "gmv_usd": fmt(seller_gmv[u["id"]]),
            "order_count": len(seller_orders[u["id"]]),
            "item_count": seller_items[u["id"]],
            "avg_rating": round(sum(ratings[u["id"]]) / len(ratings[u["id"]]), 6) if ratings[u["id"]] else None,
            "approved_reviews": len(ratings[u["id"]]),
            "current_tier": current_tier.get(u["id"]),
            "deleted": u["deleted_at"] is not None,
        }
        for u in rows["users"]
        if u["user_type"] in ("seller", "both")
    }

    return {
        "extracted_at": iso(extracted_at),
        "row_counts": {table: len(table_rows) for table, table_rows in rows.items()},
        "exchange_rates": {"USD": "1.00", "EUR": "1.09", "GBP": "1.27"},
        "gmv_statuses": list(GMV_STATUSES),
        "users": users,
        "active_user_ids": sorted(uid for uid, u in users.items() if not u["deleted"]),
        "products": products,
        "orders": orders,
        "payment_events": payment_events,
        "payments_summary": {
            "rows": len(rows["payments"]),
            "unique_events": len(payment_events),
            "replayed_events": len(planted["replayed_event_ids"]),
            "total_usd": fmt(sum(to_usd_cents(copies[0]["amount"], copies[0]["currency"])
                                 for copies in deliveries.values())),
        },
        "daily_sales": [
            {"order_date": d, "shipping_country": c, "top_level_category": t, "gmv_usd": fmt(cell["gmv_cents"]),
             "order_count": len(cell["orders"]), "item_count": cell["items"]}
            for (d, c, t), cell in sorted(daily.items())
        ],
        "sellers": sellers,
    }

"""The marketplace source schema (exercise contract §1) and its raw warehouse shape (§3).

One declaration serves the Postgres DDL, the column comments a careful candidate reads,
the raw BigQuery tables the grader loads, and the dbt sources of the starter project.
"""

from __future__ import annotations

from dataclasses import dataclass

RAW_PROJECT = "marketplace-analytics"
RAW_DATASET = "raw"
DATASETS = ("raw", "staging", "marts")

EXCHANGE_RATES = {"USD": "1.00", "EUR": "1.09", "GBP": "1.27"}


@dataclass(frozen=True)
class Column:
    name: str
    pg_type: str
    comment: str
    nullable: bool = True

    @property
    def bq_type(self) -> str:
        return bq_type_for(self.pg_type)


@dataclass(frozen=True)
class Table:
    name: str
    comment: str
    columns: tuple[Column, ...]
    primary_key: str = "id"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def bq_type_for(pg_type: str) -> str:
    """Airbyte destinations-v2 type mapping (contract §3)."""
    t = pg_type.upper()
    if t in ("JSONB", "JSON") or t.endswith("[]"):
        return "JSON"
    if t.startswith(("UUID", "TEXT", "VARCHAR", "CHAR")):
        return "STRING"
    if t in ("TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE"):
        return "TIMESTAMP"
    if t in ("TIMESTAMP", "TIMESTAMP WITHOUT TIME ZONE"):
        return "DATETIME"
    if t.startswith("NUMERIC"):
        return "NUMERIC"
    if t in ("INTEGER", "SMALLINT", "BIGINT", "SERIAL", "BIGSERIAL"):
        return "INT64"
    if t == "BOOLEAN":
        return "BOOL"
    raise ValueError(f"no BigQuery type for Postgres type {pg_type!r}")


AIRBYTE_COLUMNS = (
    ("_airbyte_raw_id", "STRING"),
    ("_airbyte_extracted_at", "TIMESTAMP"),
    ("_airbyte_meta", "JSON"),
    ("_airbyte_generation_id", "INT64"),
)

C = Column

TABLES: tuple[Table, ...] = (
    Table("categories", "Product taxonomy, up to three levels deep (parent_id points one level up).", (
        C("id", "SERIAL", "Surrogate key.", False),
        C("name", "TEXT", "Display name.", False),
        C("slug", "TEXT", "URL slug, unique.", False),
        C("parent_id", "INTEGER", "Parent category; NULL for top-level (level 1) categories."),
        C("level", "INTEGER", "Depth in the tree: 1 = top level, 3 = leaf.", False),
        C("is_active", "BOOLEAN", "Whether the category is shown on the site.", False),
        C("created_at", "TIMESTAMPTZ", "When the category was created (UTC).", False),
    )),
    Table("users", "Buyers and sellers. Rows are soft-deleted: deleted_at is set instead of removing the row.", (
        C("id", "UUID", "User id.", False),
        C("email", "TEXT", "Login e-mail, unique.", False),
        C("username", "TEXT", "Public handle.", False),
        C("user_type", "TEXT", "buyer, seller or both.", False),
        C("first_name", "TEXT", "Given name."),
        C("last_name", "TEXT", "Family name."),
        C("country_code", "CHAR(2)", "ISO 3166-1 alpha-2 country; NULL when the user never gave one."),
        C("seller_tier", "TEXT", "Tier copied from the tier service at signup and on some later updates; "
          "may lag behind seller_tier_history. NULL for pure buyers."),
        C("seller_rating", "NUMERIC(3,2)", "Average seller rating shown on the profile (0.00-5.00); NULL for pure buyers."),
        C("created_at", "TIMESTAMPTZ", "Signup time (UTC).", False),
        C("updated_at", "TIMESTAMPTZ", "Last profile change (UTC).", False),
        C("deleted_at", "TIMESTAMPTZ", "Soft delete: when the account was deleted; NULL while the account exists."),
        C("is_active", "BOOLEAN", "false for deleted accounts and for suspended accounts (suspended users are not deleted).", False),
    )),
    Table("products", "Listings. Prices are in the listing's own currency.", (
        C("id", "UUID", "Product id.", False),
        C("seller_id", "UUID", "Seller (users.id).", False),
        C("category_id", "INTEGER", "Leaf or intermediate category (categories.id).", False),
        C("title", "TEXT", "Listing title.", False),
        C("description", "TEXT", "Listing text."),
        C("price_amount", "NUMERIC(12,2)", "Price in price_currency.", False),
        C("price_currency", "CHAR(3)", "ISO 4217: USD, EUR or GBP.", False),
        C("quantity_available", "INTEGER", "Units in stock.", False),
        C("status", "TEXT", "draft, active, paused, sold_out or deleted.", False),
        C("tags", "TEXT[]", "Free-form tags."),
        C("attributes", "JSONB", "Seller-supplied attributes (condition, colour, ...)."),
        C("created_at", "TIMESTAMPTZ", "Listing creation (UTC).", False),
        C("updated_at", "TIMESTAMPTZ", "Last change, as reported by the seller's client (UTC); client clocks can be wrong.", False),
        C("published_at", "TIMESTAMPTZ", "First time the listing went live (UTC); NULL for drafts."),
    )),
    Table("orders", "One row per checkout. Amounts are in the order currency; "
          "total_amount = subtotal_amount + shipping_amount + tax_amount - discount_amount.", (
        C("id", "UUID", "Order id.", False),
        C("order_number", "TEXT", "Human-readable number ORD-YYYYMMDD-NNNNN.", False),
        C("buyer_id", "UUID", "Buyer (users.id).", False),
        C("status", "TEXT", "pending, confirmed, processing, shipped, delivered, cancelled or refunded.", False),
        C("subtotal_amount", "NUMERIC(12,2)", "Sum of the items' total_price.", False),
        C("shipping_amount", "NUMERIC(12,2)", "Shipping charged.", False),
        C("tax_amount", "NUMERIC(12,2)", "Tax charged.", False),
        C("discount_amount", "NUMERIC(12,2)", "Discount granted.", False),
        C("total_amount", "NUMERIC(12,2)", "subtotal + shipping + tax - discount.", False),
        C("currency", "CHAR(3)", "ISO 4217: USD, EUR or GBP.", False),
        C("shipping_country", "CHAR(2)", "Destination country (ISO 3166-1 alpha-2).", False),
        C("shipping_city", "TEXT", "Destination city.", False),
        C("shipping_postal_code", "TEXT", "Destination postal code."),
        C("created_at", "TIMESTAMPTZ", "Checkout time (UTC).", False),
        C("updated_at", "TIMESTAMPTZ", "Last status change (UTC).", False),
        C("confirmed_at", "TIMESTAMP", "Confirmation time written by the legacy order service as LOCAL WALL-CLOCK "
          "time in America/New_York (no zone stored; daylight saving applies). NULL if never confirmed."),
        C("shipped_at", "TIMESTAMPTZ", "Hand-over to the carrier (UTC)."),
        C("delivered_at", "TIMESTAMPTZ", "Delivery (UTC)."),
    )),
    Table("order_items", "Line items. Prices are in the order's currency.", (
        C("id", "UUID", "Line id.", False),
        C("order_id", "UUID", "Order (orders.id).", False),
        C("product_id", "UUID", "Product (products.id).", False),
        C("seller_id", "UUID", "Seller of the product at purchase time (users.id).", False),
        C("quantity", "INTEGER", "Units bought.", False),
        C("unit_price", "NUMERIC(12,2)", "Price per unit in the order currency.", False),
        C("total_price", "NUMERIC(12,2)", "quantity * unit_price, in the order currency.", False),
        C("currency", "CHAR(3)", "Always the order's currency.", False),
        C("product_title", "TEXT", "Title at purchase time.", False),
        C("product_snapshot", "JSONB", "Listing as it was at purchase time."),
        C("created_at", "TIMESTAMPTZ", "Line creation (UTC).", False),
    )),
    Table("payments", "Payment events received from the payment providers' webhooks. Providers retry webhooks: "
          "the same event (event_id) can be delivered more than once, each delivery stored as a new row.", (
        C("id", "UUID", "Row id, new for every delivery.", False),
        C("order_id", "UUID", "Order (orders.id).", False),
        C("payment_provider", "TEXT", "stripe, adyen or paypal.", False),
        C("payment_provider_id", "TEXT", "The provider's payment reference.", False),
        C("amount", "NUMERIC(12,2)", "Amount in currency.", False),
        C("currency", "CHAR(3)", "ISO 4217: USD, EUR or GBP.", False),
        C("platform_fee", "NUMERIC(12,2)", "Marketplace fee in currency.", False),
        C("seller_payout", "NUMERIC(12,2)", "amount - platform_fee.", False),
        C("status", "TEXT", "pending, processing, completed, failed, refunded or disputed.", False),
        C("created_at", "TIMESTAMPTZ", "When this delivery was stored (UTC).", False),
        C("processed_at", "TIMESTAMPTZ", "When the provider processed the payment (UTC)."),
        C("event_id", "VARCHAR(64)", "The provider's event id: identifies the event across webhook deliveries.", False),
        C("event_timestamp", "TIMESTAMPTZ", "Delivery time of the webhook (UTC).", False),
    )),
    Table("reviews", "Product reviews, moderated before they are shown.", (
        C("id", "UUID", "Review id.", False),
        C("product_id", "UUID", "Product reviewed (products.id).", False),
        C("order_item_id", "UUID", "Purchase the review refers to; NULL when not linked to a purchase."),
        C("reviewer_id", "UUID", "Author (users.id).", False),
        C("rating", "INTEGER", "1 to 5 stars.", False),
        C("title", "TEXT", "Headline."),
        C("body", "TEXT", "Review text."),
        C("is_verified_purchase", "BOOLEAN", "true when linked to a delivered purchase.", False),
        C("helpful_votes", "INTEGER", "Votes by other users.", False),
        C("status", "TEXT", "pending, approved, rejected or flagged. Only approved reviews are public.", False),
        C("moderated_at", "TIMESTAMPTZ", "Moderation decision time (UTC)."),
        C("created_at", "TIMESTAMPTZ", "Submission (UTC).", False),
        C("updated_at", "TIMESTAMPTZ", "Last change (UTC).", False),
    )),
    Table("seller_tier_history", "Seller tier changes, SCD type 2: one row per period; the open row "
          "(effective_to NULL, is_current true) is the seller's current tier.", (
        C("id", "SERIAL", "Surrogate key.", False),
        C("user_id", "UUID", "Seller (users.id).", False),
        C("tier", "TEXT", "bronze, silver, gold or platinum.", False),
        C("effective_from", "TIMESTAMPTZ", "Start of the period (UTC), inclusive.", False),
        C("effective_to", "TIMESTAMPTZ", "End of the period (UTC), exclusive; NULL for the current period."),
        C("is_current", "BOOLEAN", "true for the current period.", False),
        C("change_reason", "TEXT", "signup, promotion, demotion or review.", False),
        C("created_at", "TIMESTAMPTZ", "When the row was written (UTC).", False),
    )),
    Table("event_log", "CDC-style change stream. Events can be received out of order: sort by event_timestamp, "
          "not by id or received_at.", (
        C("id", "BIGSERIAL", "Arrival sequence number.", False),
        C("event_type", "TEXT", "e.g. order.created, order.status_changed, payment.received.", False),
        C("entity_type", "TEXT", "order, payment, product or user.", False),
        C("entity_id", "UUID", "Id of the entity in its own table.", False),
        C("event_data", "JSONB", "Event payload."),
        C("event_timestamp", "TIMESTAMPTZ", "When the change happened at the source (UTC).", False),
        C("received_at", "TIMESTAMPTZ", "When the event reached the log (UTC).", False),
        C("processed", "BOOLEAN", "Whether downstream consumers have processed it.", False),
    )),
)

TABLES_BY_NAME = {t.name: t for t in TABLES}

"""Money as integer cents, converted to USD exactly as the exercise defines it.

USD amount = amount x usd_rate of the seed `exchange_rates`, rounded half away from zero to
cents, per row. Integer cents keep the generator and the truth free of float error.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from raw_layer.schema import EXCHANGE_RATES

Cents = int

_RATES = {code: Decimal(rate) for code, rate in EXCHANGE_RATES.items()}


def to_usd_cents(cents: Cents, currency: str) -> Cents:
    value = (Decimal(cents) * _RATES[currency]).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return int(value)


def fmt(cents: Cents) -> str:
    """Cents as a NUMERIC literal: 1234 -> '12.34', -5 -> '-0.05'."""
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"

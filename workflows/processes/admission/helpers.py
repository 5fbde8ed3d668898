"""Helpers the admission diagram calls from its conditions."""

from ...rules import housing


def waitlist_refusal_limit_reached(offer: dict) -> bool:
    """Whether this decline or no-show reaches the refusal limit (the offer carries the earlier count)."""
    return housing.refusal_limit_reached(int(offer.get("refusals_before") or 0))

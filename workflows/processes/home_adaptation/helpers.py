"""Helpers the home_adaptation diagram calls from scripts, conditions and timer expressions."""

from ...rules import housing


def price_adaptation_plan(plan: dict, cap) -> dict:
    """Price a household plan against the subsidy cap: lines, total, subsidy, household share, problems."""
    return housing.price_plan(plan, cap).as_dict()


def adaptation_payment_matches(paid_amount, plan_summary: dict) -> bool:
    """Whether the amount paid is the plan's subsidy to the cent (the household pays the rest itself)."""
    return housing.to_amount(paid_amount) == housing.to_amount(plan_summary.get("subsidy"))


def adaptation_notice_period() -> str:
    """The public notice period (公示期) as an ISO 8601 duration for the timer, e.g. `P7D`."""
    return f"P{int(housing.setting('adaptation', 'public_notice_days'))}D"

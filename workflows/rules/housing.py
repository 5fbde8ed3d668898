"""Rules and configuration of home adaptation (适老化改造) and the public nursing-home waitlist (轮候).

- The national list of 30 adaptation items (民发〔2020〕86号 附件) is data: `data/home_adaptation_items.json`,
  with a unit and an indicative unit price per item that are configuration, not part of the national list.
- Settings a county changes (public notice days, which item kinds are subsidised, refusal limit and ban, SMS
  wording) are in `data/housing.json`; a county overrides any of them with a JSON file named by the
  environment variable ELDERCARE_HOUSING_CONFIG (merged key by key over the defaults).
- `price_plan` prices a household's plan (一户一策) against the per-household subsidy cap; the cap itself
  comes from the DMN table `adaptation_subsidy_cap` beside the diagram.

Pure functions over data: no database, safe to call from diagram helpers.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent / "data"
CONFIG_ENV = "ELDERCARE_HOUSING_CONFIG"
CENT = Decimal("0.01")

KIND_LABELS = {"basic": "基础类", "optional": "可选类"}


# --------------------------------------------------------------------------------------------------
# Configuration


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@cache
def settings() -> dict[str, Any]:
    """The housing settings: the shipped defaults merged with the county's override file, if any."""
    data = json.loads((DATA_DIR / "housing.json").read_text(encoding="utf-8"))
    override = os.environ.get(CONFIG_ENV)
    if override:
        data = _merge(data, json.loads(Path(override).read_text(encoding="utf-8")))
    return data


def reload() -> None:
    """Forget the cached settings (after the override file or the environment changed)."""
    settings.cache_clear()


def setting(section: str, key: str):
    return settings()[section][key]


# --------------------------------------------------------------------------------------------------
# The national adaptation item list


@cache
def adaptation_catalogue() -> dict[str, Any]:
    return json.loads((DATA_DIR / "home_adaptation_items.json").read_text(encoding="utf-8"))


def adaptation_items() -> dict[str, dict]:
    """The 30 items by key, in the national list's order."""
    return {item["key"]: item for item in adaptation_catalogue()["items"]}


def adaptation_groups() -> dict[str, str]:
    return {g["key"]: g["name"] for g in adaptation_catalogue()["groups"]}


def item_label(item: dict) -> str:
    """How an item is shown in forms: `1. 防滑处理（地面改造，基础类）`."""
    return (
        f"{item['no']}. {item['name']}（{adaptation_groups()[item['group']]}，{KIND_LABELS[item['kind']]}）"
    )


# --------------------------------------------------------------------------------------------------
# Money


def to_amount(value) -> Decimal | None:
    """An amount in 元 as a Decimal with 2 places, from a number or text; None when it is not one."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value).strip().replace(",", ""))
    except (InvalidOperation, ValueError):
        return None
    if not amount.is_finite():
        return None
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def yuan(amount: Decimal) -> str:
    """`3500.00` -> `3,500.00 元`."""
    return f"{amount:,.2f} 元"


# --------------------------------------------------------------------------------------------------
# Pricing a plan


@dataclass
class PlanLine:
    item: str
    name: str
    kind: str
    unit: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    subsidised: bool

    def as_dict(self) -> dict:
        return {
            "item": self.item,
            "name": self.name,
            "kind": self.kind,
            "unit": self.unit,
            "quantity": self.quantity,
            "unit_price": self.unit_price,
            "amount": self.amount,
            "subsidised": self.subsidised,
        }


@dataclass
class PlanPrice:
    """A priced plan: its lines, the total, the subsidy within the cap and the household's share."""

    lines: list[PlanLine] = field(default_factory=list)
    total: Decimal = Decimal("0.00")
    subsidisable: Decimal = Decimal("0.00")  # the part of the total that the subsidy may cover
    cap: Decimal = Decimal("0.00")
    subsidy: Decimal = Decimal("0.00")
    household_share: Decimal = Decimal("0.00")  # what the household must pay
    stated_share: Decimal | None = None  # what the plan says the household pays
    problems: dict[str, str] = field(default_factory=dict)  # {form path: Chinese message}

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "lines": [line.as_dict() for line in self.lines],
            "total": self.total,
            "subsidisable": self.subsidisable,
            "cap": self.cap,
            "subsidy": self.subsidy,
            "household_share": self.household_share,
            "problems": dict(self.problems),
            "problem": "；".join(self.problems.values()),
        }


def price_plan(plan: dict, cap, subsidised_kinds: list[str] | None = None) -> PlanPrice:
    """Price a plan {"items": [{"item", "quantity", "unit_price"?}], "household_share"?} against the cap.

    A line without a unit price takes the item's indicative price. The subsidy is the subsidisable part of
    the total, at most the cap; the household pays the rest, and a plan whose household share is not zero
    must state it (and state it right), or it is refused with a message on `plan.household_share`.
    """
    items = adaptation_items()
    kinds = subsidised_kinds if subsidised_kinds is not None else setting("adaptation", "subsidised_kinds")
    result = PlanPrice(cap=to_amount(cap) or Decimal("0.00"))
    plan = plan or {}
    rows = plan.get("items") or []
    if not rows:
        result.problems["plan.items"] = "请至少选择一个改造项目"
    seen: dict[str, int] = {}
    for index, row in enumerate(rows):
        path = f"plan.items.{index}"
        key = (row or {}).get("item")
        item = items.get(key)
        if item is None:
            result.problems[f"{path}.item"] = "不是国家推荐清单中的改造项目"
            continue
        if key in seen:
            result.problems[f"{path}.item"] = f"与第 {seen[key] + 1} 行重复：{item['name']}，请合并数量"
            continue
        seen[key] = index
        quantity = to_amount(row.get("quantity"))
        if quantity is None or quantity <= 0:
            result.problems[f"{path}.quantity"] = "数量应大于 0"
            continue
        given_price = row.get("unit_price")
        unit_price = (
            to_amount(given_price)
            if given_price not in (None, "")
            else to_amount(item["indicative_unit_price"])
        )
        if unit_price is None or unit_price < 0:
            result.problems[f"{path}.unit_price"] = "单价应为不小于 0 的金额"
            continue
        amount = (quantity * unit_price).quantize(CENT, rounding=ROUND_HALF_UP)
        subsidised = item["kind"] in kinds
        result.lines.append(
            PlanLine(key, item["name"], item["kind"], item["unit"], quantity, unit_price, amount, subsidised)
        )
    result.total = sum((line.amount for line in result.lines), Decimal("0.00"))
    result.subsidisable = sum((line.amount for line in result.lines if line.subsidised), Decimal("0.00"))
    result.subsidy = min(result.subsidisable, result.cap)
    result.household_share = result.total - result.subsidy

    stated = plan.get("household_share")
    result.stated_share = to_amount(stated) if stated not in (None, "") else None
    if stated not in (None, "") and result.stated_share is None:
        result.problems["plan.household_share"] = "应为金额（元）"
    elif not result.problems.get("plan.items") and not any(
        k.startswith("plan.items.") for k in result.problems
    ):
        _check_share(result)
    return result


def _check_share(result: PlanPrice) -> None:
    due, stated = result.household_share, result.stated_share
    if due > 0:
        unsubsidised = result.total - result.subsidisable
        why = f"方案总价 {yuan(result.total)}"
        if unsubsidised > 0:
            why += f"，其中 {yuan(unsubsidised)}为不在补助范围内的项目"
        if result.subsidisable > result.cap:
            within = f"补助范围内的 {yuan(result.subsidisable)}" if unsubsidised > 0 else ""
            why += f"，{within}超出本户补助上限 {yuan(result.cap)}"
        if stated is None:
            result.problems["plan.household_share"] = (
                f"{why}，须写明家庭自付部分（{yuan(due)}），并由老年人或其监护人签字确认"
            )
        elif stated != due:
            result.problems["plan.household_share"] = (
                f"家庭自付部分应为 {yuan(due)}（方案总价 {yuan(result.total)} − 补助 {yuan(result.subsidy)}），"
                f"填写的是 {yuan(stated)}"
            )
    elif stated is not None and stated != 0:
        result.problems["plan.household_share"] = (
            f"方案总价 {yuan(result.total)}在补助范围内，家庭无需自付，自付部分应为 0"
        )


# --------------------------------------------------------------------------------------------------
# Waitlist refusals


def refusal_limit_reached(refusals_before: int, limit: int | None = None) -> bool:
    """Whether one more decline or no-show reaches the configured limit (refusals_before counts the window)."""
    limit = limit if limit is not None else int(setting("admission", "refusal_limit"))
    return limit > 0 and int(refusals_before) + 1 >= limit

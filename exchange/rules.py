"""秒批 (instant automated approval): declarative rule sets of service items, evaluated on facts.

A service item approves when every rule holds. Evaluation is three-valued: a rule that fails
rejects; a rule that cannot be evaluated (its fact is missing or has no value) sends the application
to manual review unless another rule already failed. A subject with no identity record is never
rejected: every item goes to manual review (DEPARTMENTS.md).

The rule sets live in `policy/service_items.json`; `load_service_items` turns the parsed JSON into
`ServiceItem`s and refuses a malformed file with a message naming the item and the rule.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from typing import Any, Literal

from exchange.exceptions import ConfigurationError
from exchange.facts import FACT_NAMES, STATUS_UNKNOWN, Fact, FactValue

Outcome = Literal["approved", "rejected", "manual_review"]
Scalar = int | bool | str | None
RuleValue = Scalar | tuple[Scalar, ...]

_NUMBER = re.compile(r"-?\d+(\.\d+)?")
# An amount fact's value ("656.91", two decimals): the only fact text with a decimal point. Codes such as
# a district ("440104") are digits without one, and stay text.
_AMOUNT = re.compile(r"-?\d+\.\d+")


@dataclass(frozen=True, slots=True)
class Rule:
    """One condition of a service item: `fact operator value`, with the reason in Chinese and English."""

    fact: str
    operator: str
    value: RuleValue
    reason_zh: str
    reason_en: str


@dataclass(frozen=True, slots=True)
class ServiceItem:
    """服务事项 decided automatically: its code, its names, and the rules that must all hold."""

    code: str
    name_zh: str
    name_en: str
    rules: tuple[Rule, ...]


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a decision came out as it did: a rule, whether it was met (None: undeterminable), its text."""

    fact: str
    met: bool | None
    zh: str
    en: str


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of a service item for one subject, with its reasons and the facts (and lineage) used."""

    item: str
    outcome: Outcome
    reasons: tuple[Reason, ...]
    facts_used: Mapping[str, Fact]


NO_IDENTITY = Reason(
    "identity.status",
    None,
    "无户籍记录，无法自动审批，转人工审核",
    "no identity record: the application cannot be decided automatically and goes to a clerk",
)


def _number(value: FactValue | RuleValue) -> Decimal | None:
    """Integers and decimal strings ("656.91") compare as numbers; anything else is not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        return Decimal(value)
    return None


def _quantity(value: FactValue) -> Decimal | None:
    """A fact value that is a quantity (a count, or an amount such as "656.91") as a number, else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str) and _AMOUNT.fullmatch(value):
        return Decimal(value)
    return None


def _same(actual: FactValue, expected: RuleValue) -> bool:
    # A quantity equals a number as ge and le see it: an area of "120.00" is 120, "120" and "120.0",
    # and 6 months are "6", so eq never contradicts ge and le. Anything else compares strictly, types
    # included: False must not equal 0, nor the code "1" equal 1, nor the district "440104" 440104.
    quantity = _quantity(actual)
    number = None if quantity is None else _number(expected)
    if number is not None:
        return quantity == number
    return type(actual) is type(expected) and actual == expected


def _order(compare: Callable[[Decimal, Decimal], bool]) -> Callable[[FactValue, RuleValue], bool | None]:
    def holds(actual: FactValue, expected: RuleValue) -> bool | None:
        left, right = _number(actual), _number(expected)
        return None if left is None or right is None else compare(left, right)

    return holds


def _prefix(actual: FactValue, expected: RuleValue) -> bool | None:
    if not isinstance(actual, str) or not isinstance(expected, str):
        return None
    return actual.startswith(expected)


def _within(actual: FactValue, expected: RuleValue) -> bool:
    return isinstance(expected, tuple) and any(_same(actual, option) for option in expected)


# operator -> evaluation on (fact value, rule value); None means the rule cannot be evaluated.
OPERATORS: Mapping[str, Callable[[FactValue, RuleValue], bool | None]] = {
    "eq": _same,
    "ne": lambda actual, expected: not _same(actual, expected),
    "ge": _order(lambda left, right: left >= right),
    "gt": _order(lambda left, right: left > right),
    "le": _order(lambda left, right: left <= right),
    "lt": _order(lambda left, right: left < right),
    "in": _within,
    "prefix": _prefix,
}


def compare(operator: str, actual: FactValue, expected: RuleValue) -> bool | None:
    """Whether `actual operator expected` holds; None when it cannot be told. A fact with no value (no
    current employer, say) tells nothing either way: `ne` would hold on it and approve or verify, `eq`
    and `in` would fail on it and reject."""
    return None if actual is None else OPERATORS[operator](actual, expected)


def evaluate(rule: Rule, facts: Mapping[str, Fact]) -> Reason:
    """Whether one rule holds on the facts, as a `Reason` (met is None when it cannot be told)."""
    fact = facts.get(rule.fact)
    met = None if fact is None else compare(rule.operator, fact.value, rule.value)
    return Reason(rule.fact, met, rule.reason_zh, rule.reason_en)


def decide(item: ServiceItem, facts: Mapping[str, Fact]) -> Decision:
    """Approve, reject or send to manual review one service item on a subject's facts."""
    identity = facts.get("identity.status")
    if identity is None or identity.value == STATUS_UNKNOWN:
        used = {"identity.status": identity} if identity is not None else {}
        return Decision(item.code, "manual_review", (NO_IDENTITY,), used)
    results = tuple(evaluate(rule, facts) for rule in item.rules)
    used = {rule.fact: facts[rule.fact] for rule in item.rules if rule.fact in facts}
    failed = tuple(reason for reason in results if reason.met is False)
    if failed:
        return Decision(item.code, "rejected", failed, used)
    unknown = tuple(reason for reason in results if reason.met is None)
    if unknown:
        return Decision(item.code, "manual_review", unknown, used)
    return Decision(item.code, "approved", results, used)


def _text(node: Any, where: str) -> tuple[str, str]:
    if not isinstance(node, Mapping) or not all(
        isinstance(node.get(lang), str) and node[lang] for lang in ("zh", "en")
    ):
        raise ConfigurationError(f'{where}: expected {{"zh": …, "en": …}} with both texts non-empty')
    return node["zh"], node["en"]


def _scalar(value: Any, where: str) -> Scalar:
    if value is None or isinstance(value, int | str):
        return value
    raise ConfigurationError(f"{where}: {value!r} is not a string, an integer, a boolean or null")


def _checked_value(operator: str, value: Any, where: str) -> RuleValue:
    """The rule value, if it suits the operator; `in` takes a list, the others one scalar."""
    if operator == "in":
        if not isinstance(value, list) or not value:
            raise ConfigurationError(f"{where}: operator in needs a non-empty list")
        return tuple(_scalar(option, where) for option in value)
    checked = _scalar(value, where)
    if operator in ("ge", "gt", "le", "lt") and _number(checked) is None:
        raise ConfigurationError(f"{where}: operator {operator} needs an integer or a decimal string")
    if operator == "prefix" and (not isinstance(checked, str) or not checked):
        raise ConfigurationError(f"{where}: operator prefix needs a non-empty string")
    return checked


def _rule(node: Any, where: str) -> Rule:
    if not isinstance(node, Mapping):
        raise ConfigurationError(f"{where}: a rule must be an object")
    fact, operator = node.get("fact"), node.get("operator")
    if not isinstance(fact, str) or fact not in FACT_NAMES:
        raise ConfigurationError(
            f"{where}: unknown fact {fact!r}; known facts: {', '.join(sorted(FACT_NAMES))}"
        )
    if not isinstance(operator, str) or operator not in OPERATORS:
        raise ConfigurationError(
            f"{where}: unknown operator {operator!r}; expected one of {', '.join(OPERATORS)}"
        )
    if "value" not in node:
        raise ConfigurationError(f"{where}: the rule has no value")
    zh, en = _text(node.get("reason"), f"{where}.reason")
    return Rule(fact, operator, _checked_value(operator, node["value"], where), zh, en)


def _item(code: str, node: Any) -> ServiceItem:
    where = f"service item {code}"
    if not isinstance(node, Mapping):
        raise ConfigurationError(f"{where}: expected an object with name and rules")
    rules = node.get("rules")
    if not isinstance(rules, Sequence) or isinstance(rules, str) or not rules:
        raise ConfigurationError(f"{where}: rules must be a non-empty list")
    name_zh, name_en = _text(node.get("name"), f"{where}.name")
    return ServiceItem(
        code,
        name_zh,
        name_en,
        tuple(_rule(rule, f"{where} rule {index}") for index, rule in enumerate(rules)),
    )


def load_service_items(document: Mapping[str, Any]) -> dict[str, ServiceItem]:
    """The service items of a parsed policy document; raise `ConfigurationError` if it is malformed."""
    items = document.get("service_items")
    if not isinstance(items, Mapping) or not items:
        raise ConfigurationError('policy: expected a non-empty object "service_items" of code → item')
    return {code: _item(code, node) for code, node in items.items()}


def bundled_service_items() -> dict[str, ServiceItem]:
    """The service items shipped in `policy/service_items.json`."""
    node = resources.files("policy").joinpath("service_items.json")
    try:
        document = json.loads(node.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read policy/service_items.json: {exc}") from exc
    return load_service_items(document)

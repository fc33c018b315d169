"""秒批 rules: each service item approves, rejects or goes to manual review; the policy file is checked."""

from __future__ import annotations

import copy
import datetime as dt
import json
from importlib import resources
from typing import Any

import pytest
from canonical import contribution, fold, payment, person, title
from canonical import facts_of as resolved_facts

from exchange.exceptions import ConfigurationError
from exchange.facts import Fact, compute
from exchange.rules import (
    NO_IDENTITY,
    OPERATORS,
    Rule,
    ServiceItem,
    bundled_service_items,
    decide,
    evaluate,
    load_service_items,
)

D = dt.date(2026, 11, 15)
ITEMS = bundled_service_items()
MONTHS_2026 = [f"2026-{month:02d}" for month in range(1, 11)]


def facts_of(*records: dict[str, Any]) -> dict[str, Fact]:
    """The facts of a profile folded from `records`."""
    return resolved_facts(records, D)


def outcome(item: str, facts: dict[str, Fact]) -> str:
    return decide(ITEMS[item], facts).outcome


def test_the_bundled_policy_has_the_three_items() -> None:
    assert set(ITEMS) == {"talent-green-card", "public-rental-housing", "longevity-allowance"}
    assert ITEMS["talent-green-card"].name_zh == "人才绿卡"


# --- talent-green-card -----------------------------------------------------------------------------


def _talent(pension_months: list[str], tax_months: list[str], **identity: Any) -> dict[str, Fact]:
    records: list[dict[str, Any]] = [person(**identity)]
    records += [contribution(f"P{month}", month) for month in pension_months]
    records += [payment(f"T{month}", month) for month in tax_months]
    return facts_of(*records)


def test_talent_green_card_approves_six_months_of_pension_and_tax() -> None:
    decision = decide(ITEMS["talent-green-card"], _talent(MONTHS_2026[-6:], MONTHS_2026[:6]))
    assert decision.outcome == "approved"
    assert [reason.met for reason in decision.reasons] == [True, True, True]
    assert set(decision.facts_used) == {
        "identity.status",
        "social.pension.continuous_months",
        "tax.months_paid_12",
    }
    assert len(decision.facts_used["social.pension.continuous_months"].lineage) == 6


def test_talent_green_card_rejects_five_continuous_months() -> None:
    decision = decide(ITEMS["talent-green-card"], _talent(MONTHS_2026[-5:], MONTHS_2026))
    assert decision.outcome == "rejected"
    assert [reason.fact for reason in decision.reasons] == ["social.pension.continuous_months"]
    assert decision.reasons[0].met is False
    assert decision.reasons[0].zh and decision.reasons[0].en


def test_talent_green_card_rejects_five_months_of_tax() -> None:
    assert outcome("talent-green-card", _talent(MONTHS_2026, MONTHS_2026[:5])) == "rejected"


def test_talent_green_card_rejects_a_deceased_subject() -> None:
    assert outcome("talent-green-card", _talent(MONTHS_2026, MONTHS_2026, status="deceased")) == "rejected"


# --- public-rental-housing -------------------------------------------------------------------------


def test_public_rental_housing_approves_without_a_home_in_the_city() -> None:
    assert outcome("public-rental-housing", facts_of(person(district="440104"))) == "approved"
    elsewhere = facts_of(person(district="440104"), title("FOSHAN", district="440604"))
    assert outcome("public-rental-housing", elsewhere) == "approved"


def test_public_rental_housing_rejects_a_home_in_the_city() -> None:
    decision = decide(ITEMS["public-rental-housing"], facts_of(person(), title("HOME", district="440106")))
    assert decision.outcome == "rejected"
    assert [reason.fact for reason in decision.reasons] == ["property.owns_residential_in_city"]
    assert [
        ref.source_record_id for ref in decision.facts_used["property.owns_residential_in_city"].lineage
    ] == ["HOME"]


def test_public_rental_housing_rejects_a_registration_outside_guangzhou() -> None:
    assert outcome("public-rental-housing", facts_of(person(district="440604"))) == "rejected"


def test_public_rental_housing_accepts_an_abolished_guangzhou_district() -> None:
    assert outcome("public-rental-housing", facts_of(person(district="440102"))) == "approved"


# --- longevity-allowance ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("born", "expected"),
    [
        (dt.date(1946, 11, 15), "approved"),
        (dt.date(1946, 11, 16), "rejected"),
        (dt.date(1937, 6, 24), "approved"),
    ],
)
def test_longevity_allowance_from_the_80th_birthday(born: dt.date, expected: str) -> None:
    assert outcome("longevity-allowance", facts_of(person(birth_date=born))) == expected


def test_longevity_allowance_rejects_a_moved_out_subject() -> None:
    facts = facts_of(person(birth_date=dt.date(1930, 1, 1), status="moved_out"))
    assert outcome("longevity-allowance", facts) == "rejected"


# --- manual review ---------------------------------------------------------------------------------


@pytest.mark.parametrize("item", sorted(ITEMS))
def test_no_identity_record_is_manual_review_never_rejection(item: str) -> None:
    # Everything else would fail too: still manual review, with that one reason.
    facts = compute(fold([title("HOME")]), D)
    decision = decide(ITEMS[item], facts)
    assert decision.outcome == "manual_review"
    assert decision.reasons == (NO_IDENTITY,)
    assert set(decision.facts_used) == {"identity.status"}


def test_a_revoked_identity_is_manual_review() -> None:
    facts = facts_of(person(), person(version=2, op="revoke"))
    assert {outcome(item, facts) for item in ITEMS} == {"manual_review"}


def test_a_missing_fact_is_manual_review_unless_another_rule_fails() -> None:
    facts = facts_of(person(birth_date=dt.date(1930, 1, 1)))
    del facts["identity.age"]
    decision = decide(ITEMS["longevity-allowance"], facts)
    assert decision.outcome == "manual_review"
    assert [(reason.fact, reason.met) for reason in decision.reasons] == [("identity.age", None)]
    facts["identity.district"] = Fact("440604")
    assert outcome("longevity-allowance", facts) == "rejected"


@pytest.mark.parametrize(("operator", "value"), [("ne", "X"), ("eq", "X"), ("in", ("X", "Y"))])
def test_a_fact_without_a_value_is_manual_review_whatever_the_operator(operator: str, value: Any) -> None:
    item = ServiceItem(
        "x", "测试", "test", (Rule("social.current_employer", operator, value, "条件", "condition"),)
    )
    facts = facts_of(person())
    assert facts["social.current_employer"].value is None
    decision = decide(item, facts)
    assert decision.outcome == "manual_review"
    assert [(reason.fact, reason.met) for reason in decision.reasons] == [("social.current_employer", None)]


def test_an_empty_facts_mapping_is_manual_review() -> None:
    assert {outcome(item, {}) for item in ITEMS} == {"manual_review"}


def test_the_no_identity_reason_speaks_both_languages() -> None:
    assert "户籍" in NO_IDENTITY.zh
    assert "identity" in NO_IDENTITY.en


# --- operators -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "actual", "expected", "met"),
    [
        ("eq", "normal", "normal", True),
        ("eq", False, False, True),
        ("eq", 0, False, False),  # strict types: 0 is not false
        ("eq", "1", 1, False),  # a code is text, whatever its digits
        ("eq", "440104", 440104, False),
        # A quantity is equal to what ge and le both hold: an amount and a count compare as numbers.
        ("eq", "120.00", "120", True),
        ("eq", "120.00", 120, True),
        ("eq", "120.00", "120.01", False),
        ("eq", 6, "6", True),
        ("eq", 6, "6.0", True),
        ("ne", "120.00", "120", False),
        ("in", "120.00", ("100", "120"), True),
        ("in", 6, ("5", "7"), False),
        ("eq", 1, True, False),
        ("ne", "deceased", "normal", True),
        ("ne", None, "normal", None),  # no value: nothing can be told
        ("eq", None, "normal", None),
        ("in", None, ("normal",), None),
        ("ge", 6, 6, True),
        ("ge", 5, 6, False),
        ("gt", 6, 6, False),
        ("le", 6, 6, True),
        ("lt", 6, 6, False),
        ("ge", "656.91", "500.00", True),  # amounts compare as numbers, not as text
        ("lt", "90.00", 100, True),
        ("ge", None, 80, None),
        ("ge", True, 0, None),
        ("ge", "normal", 1, None),
        ("in", "440104", ("440103", "440104"), True),
        ("in", "440604", ("440103", "440104"), False),
        ("prefix", "440104", "4401", True),
        ("prefix", "440604", "4401", False),
        ("prefix", None, "4401", None),
    ],
)
def test_operators(operator: str, actual: Any, expected: Any, met: bool | None) -> None:
    rule = Rule("identity.district", operator, expected, "条件", "condition")
    assert evaluate(rule, {"identity.district": Fact(actual)}).met is met
    assert operator in OPERATORS


def test_a_decision_on_a_custom_item() -> None:
    item = ServiceItem(
        "x", "测试", "test", (Rule("tax.total_paid_12", "ge", "1000.00", "纳税满1000元", "tax ≥ 1000"),)
    )
    assert decide(item, facts_of(person(), payment("V", "2026-01", tax="999.99"))).outcome == "rejected"
    assert decide(item, facts_of(person(), payment("V", "2026-01", tax="1000.00"))).outcome == "approved"


# --- the policy file -------------------------------------------------------------------------------


def _document() -> dict[str, Any]:
    text = resources.files("policy").joinpath("service_items.json").read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def test_load_service_items_reads_the_parsed_document() -> None:
    assert load_service_items(_document()) == ITEMS


def _broken(change: Any) -> dict[str, Any]:
    document = copy.deepcopy(_document())
    change(document["service_items"]["longevity-allowance"])
    return document


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda item: item["rules"][2].update(fact="identity.agee"), "unknown fact 'identity.agee'"),
        (lambda item: item["rules"][2].update(operator="gte"), "unknown operator 'gte'"),
        (lambda item: item["rules"][2].update(value="eighty"), "operator ge needs an integer"),
        (lambda item: item["rules"][1].update(value=""), "operator prefix needs a non-empty string"),
        (lambda item: item["rules"][0].update(operator="in"), "operator in needs a non-empty list"),
        (lambda item: item["rules"][0].update(value={"a": 1}), "is not a string"),
        (lambda item: item["rules"][0].pop("value"), "has no value"),
        (lambda item: item["rules"][0]["reason"].pop("en"), "rule 0.reason"),
        (lambda item: item.update(rules=[]), "rules must be a non-empty list"),
        (lambda item: item.pop("name"), "longevity-allowance.name"),
    ],
)
def test_a_malformed_policy_is_refused_with_the_item_and_rule(change: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match="longevity-allowance") as raised:
        load_service_items(_broken(change))
    assert message in str(raised.value)


def test_a_policy_without_items_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="service_items"):
        load_service_items({})

"""A verification's claim on a fact with no value: not a yes, whatever the operator (as 秒批's rules)."""

from __future__ import annotations

from typing import Any

import pytest

from exchange.api.evaluation import check_claim
from exchange.api.models.verifications import Claim
from exchange.facts import Fact

NO_EMPLOYER = {"social.current_employer": Fact(None)}


@pytest.mark.parametrize(
    ("operator", "value"),
    [("eq", "91440101MA5ABCDEFX"), ("ne", "91440101MA5ABCDEFX"), ("in", ["91440101MA5ABCDEFX"]), ("ge", 1)],
)
def test_a_claim_on_a_fact_without_a_value_does_not_hold(operator: str, value: Any) -> None:
    # `ne` held on no value: a housing office asking "employer is not X" got a yes about nobody's employer.
    claim = Claim(fact="social.current_employer", operator=operator, value=value)
    result = check_claim(claim, NO_EMPLOYER)
    assert (result["holds"], result["determinable"]) == (False, False)


def test_a_claim_on_a_fact_with_a_value_is_told() -> None:
    facts = {"social.current_employer": Fact("91440101MA5ABCDEFX")}
    told = [
        check_claim(
            Claim(fact="social.current_employer", operator=operator, value="91440101MA5ABCDEFX"), facts
        )
        for operator in ("eq", "ne")
    ]
    assert [(result["holds"], result["determinable"]) for result in told] == [(True, True), (False, True)]

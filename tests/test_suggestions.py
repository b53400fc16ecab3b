"""'Did you mean' by meaning as well as spelling, where the lab knows what its names mean (the field table)."""

from __future__ import annotations

import pytest

from lab.errors import LabError, by_meaning, close_candidates, closest, suggest
from lab.policy.fields import FIELDS
from lab.policy.loader import load_policy

NAMES = [f.name for f in FIELDS if f.expression]


def _message(tmp_path, condition: str) -> str:
    f = tmp_path / "p.yaml"
    f.write_text(f'name: p\nrules:\n  - id: r\n    on: purchase\n    when: "{condition}"\n'
                 "    do: [{discount: {percent: 1}}]\n")
    with pytest.raises(LabError) as info:
        load_policy(f)
    return info.value.diagnostics[0].message


@pytest.mark.parametrize("written, meant", [
    ("customer.spent_last_year", "customer.spend"),
    ("customer.money_spent", "customer.spend"),
    ("customer.visits", "customer.visits_90d"),  # a visit window: the visit-like fields (closest spelling among them)
    ("customer.happiness", "customer.satisfaction"),
    ("customer.coupon", "customer.voucher"),
])
def test_an_unknown_field_gets_a_field_of_the_same_kind(tmp_path, written, meant):
    msg = _message(tmp_path, f"{written} > 1")
    assert f"did you mean '{meant}'?" in msg, msg
    assert "points_earned" not in msg


@pytest.mark.parametrize("typo, fixed", [("customer.teir", "customer.tier"),
                                         ("customer.purchses", "customer.purchases"),
                                         ("amount", "purchase.amount")])
def test_a_typo_is_still_matched_by_spelling(tmp_path, typo, fixed):
    assert f"did you mean '{fixed}'?" in _message(tmp_path, f"{typo} > 1")


def test_the_close_candidates_are_listed():
    # the spend-like fields: lifetime spend first, then the rolling windows (the one a year back among them)
    near = close_candidates("customer.spent_last_year", NAMES)
    assert near[0] == "customer.spend" and "customer.spend_365d" in near
    hint = suggest("customer.spent_last_year", NAMES)
    assert hint.startswith("; did you mean 'customer.spend'? (or: ") and "customer.spend_365d" in hint


def test_meaning_is_generic_over_declared_candidates():
    meanings = {"basket_total": "dollars of this basket", "visit_count": "visits so far"}
    assert by_meaning("money_spent", meanings, meanings) == ["basket_total"]
    assert closest("trips", list(meanings), meanings=meanings) == "visit_count"
    assert closest("trips", list(meanings)) is None  # plain words without declared meanings: spelling only

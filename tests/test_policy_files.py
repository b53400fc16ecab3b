"""The shipped policies and their companions: they load, explain themselves, match the schema and the docs."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import jsonschema
import pytest

from lab.config import read_yaml
from lab.policy import model as m
from lab.policy.expr import FUNCTIONS
from lab.policy.actions import handlers
from lab.policy.explain import explain
from lab.policy.loader import load_policy, read_policy
from lab.policy.runtime import ACTIONS, ENGINE_FIELDS, RUNTIME_FIELDS, TRIGGERS
from lab.schemas import policy_schema, scenario_schema, schema_text
from lab.scenario.loader import load_scenario, world_of

ROOT = Path(__file__).resolve().parent.parent
POLICIES = sorted((ROOT / "policies").glob("*.yaml"))
DOCS = ROOT / "docs"
SCHEMA_LINE = "# yaml-language-server: $schema=../docs/policy.schema.json"
REQUIRED = {"none", "points", "credit", "performance", "tiered_points", "hybrid"}


@pytest.fixture(scope="module")
def classroom_world():
    return world_of(load_scenario(ROOT / "scenarios" / "classroom.yaml").scenario)


def test_the_policy_families_are_shipped():
    assert REQUIRED <= {p.stem for p in POLICIES}


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.stem)
def test_shipped_policy_loads_alone_and_in_the_classroom(path, classroom_world):
    alone = load_policy(path)
    inside = load_policy(path, classroom_world)
    assert alone.policy.name == path.stem == inside.policy.name
    assert alone.rule_ids == inside.rule_ids
    assert path.read_text(encoding="utf-8").splitlines()[0] == SCHEMA_LINE


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.stem)
def test_explain_mentions_every_rule_and_ledger(path):
    policy, _ = read_policy(path)
    text = explain(policy)
    assert text == explain(policy)  # deterministic
    assert text.startswith(f"Policy '{policy.name}'")
    for rule in policy.rules:
        assert f"'{rule.id}'" in text
        if rule.when.strip() != "true":
            assert " ".join(rule.when.split()) in text  # the condition is quoted verbatim
    for name in (*policy.points, *policy.credit, *(policy.tiers.levels if policy.tiers else ())):
        assert f"'{name}'" in text


def test_explain_covers_the_constructs_of_the_shipped_families():
    text = {p.stem: explain(read_policy(p)[0]) for p in POLICIES}
    assert "nothing to join" in text["none"]
    assert "1 point per whole dollar" in text["points"]
    assert "points last between 365 and 395 days" in text["points"]
    credit = text["credit"]
    for phrase in ("$200 of credit on joining", "24% a year", "$15 late fee", "2 missed minimum payments in a row",
                   "after 180 days delinquent", "the limit rises by $100", "Every month on day 15"):
        assert phrase in credit, phrase
    tiers = text["tiered_points"]
    for phrase in ("'silver': from $300 spent; earns points x1.5, 2% off every purchase", "drops one level",
                   "pending for 14 days", "On the customer's birthday", "60 days without a purchase",
                   "at most twice per customer per year", "up to 4 times on one purchase"):
        assert phrase in tiers, phrase
    hybrid = text["hybrid"]
    for phrase in ("80% of customers join", "only the matching rule worth the most to the customer fires",
                   "stops firing once it has cost $5,000", "$20,000 on rewards per year", "targeted offer"):
        assert phrase in hybrid, phrase
    assert "favourite category" in text["performance"] and "free trial" in text["performance"]


def test_explain_puts_per_dollar_earning_into_words():
    rule = m.Rule(id="earn", on=m.OnPurchase(), do=(m.Award(ledger="p", amount=m.Expr("2 * floor(purchase.amount)")),))
    pol = m.Policy(name="x", points={"p": m.PointsLedger()}, rules=(rule,))
    assert "2 points per whole dollar" in explain(pol)
    rule = m.Rule(id="earn", on=m.OnPurchase(), do=(m.Award(ledger="p", amount=m.Expr("purchase.amount * 0.5")),))
    assert "0.5 points per dollar" in explain(m.Policy(name="x", points={"p": m.PointsLedger()}, rules=(rule,)))


def test_explain_quotes_what_it_cannot_put_into_words():
    odd = "max(purchase.amount % 7, 2) ** 2 > customer.spend"
    deep = "(" * 40 + "1" + ")" * 40 + " > 0"
    rules = tuple(m.Rule(id=f"r{i}", on=m.OnPurchase(), when=m.Expr(w), do=(m.Discount(percent=m.Expr("5")),))
                  for i, w in enumerate((odd, deep, "((( not closed")))
    text = explain(m.Policy(name="x", rules=rules))
    for w in (odd, deep, "((( not closed"):
        assert f"`{w}`" in text


def test_committed_schemas_are_up_to_date():
    assert json.loads((DOCS / "policy.schema.json").read_text(encoding="utf-8")) == policy_schema()
    assert json.loads((DOCS / "scenario.schema.json").read_text(encoding="utf-8")) == scenario_schema()
    assert (DOCS / "policy.schema.json").read_text(encoding="utf-8") == schema_text(policy_schema()), \
        "regenerate with: python -m lab.schemas"


def test_schemas_are_valid_draft_2020_12_with_ids():
    for schema, name in ((policy_schema(), "policy"), (scenario_schema(), "scenario")):
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$id"] == f"https://loyalty-lab.invalid/{name}.schema.json"
        assert schema["title"]


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.stem)
def test_shipped_policy_validates_against_the_committed_schema(path):
    schema = json.loads((DOCS / "policy.schema.json").read_text(encoding="utf-8"))
    data = read_yaml(path).to_python()  # the lab's YAML rules: 'on' stays a key, not a boolean
    errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(data)]
    assert errors == []


def test_schema_rejects_what_the_loader_rejects():
    validator = jsonschema.Draft202012Validator(policy_schema())
    assert not validator.is_valid({"name": "x", "points": {"p": {"expirey": 3}}})
    assert not validator.is_valid({"name": "x", "rules": [{"id": "r", "on": "purchase", "do": [{"discont": {}}]}]})
    assert not validator.is_valid({"name": "x", "participation": 2})
    assert validator.is_valid({"name": "x", "rules": [{"id": "r", "on": {"schedule": {"every": "week"}},
                                                       "do": [{"offer": {"response": 0.2}}]}]})


@pytest.fixture(scope="module")
def reference():
    return (DOCS / "POLICIES.md").read_text(encoding="utf-8")


def _mentioned(word: str, text: str) -> bool:
    return re.search(r"(?<![\w.])" + re.escape(word) + r"(?![\w])", text) is not None


def test_reference_mentions_every_trigger_action_field_and_function(reference):
    missing = [w for w in (*TRIGGERS, *ACTIONS, *ENGINE_FIELDS, *RUNTIME_FIELDS, *FUNCTIONS)
               if not _mentioned(w, reference)]
    assert missing == []


def test_reference_mentions_every_policy_key(reference):
    classes = (m.Policy, m.PointsLedger, m.CreditLine, m.Tiers, m.TierLevel, m.Rule, m.Cap, m.Budget,
               *m.Trigger.__args__, *m.Action.__args__)
    keys = {f.name.rstrip("_") for cls in classes for f in dataclasses.fields(cls)}
    missing = sorted(k for k in keys if f"`{k}`" not in reference and f"{k}:" not in reference)
    assert missing == []


def test_reference_shows_the_error_format_and_commands(reference):
    for text in ("FILE:LINE:COL: message", "lab validate", "lab explain", "lab schema"):
        assert text in reference


# One example of every registered action, for the explain test; a newly registered action without one fails
# test_every_registered_action_has_an_explain_example.
EXAMPLES: dict[str, object] = {
    "award": m.Award(ledger="p", amount=m.Expr("3")), "deduct": m.Deduct(ledger="p", amount=m.Expr("10")),
    "redeem": m.Redeem(ledger="p", cost=100, free_item="favourite", max_times=2),
    "discount": m.Discount(fixed=m.Expr("4")),
    "voucher": m.Voucher(value=m.Expr("7"), valid_days=14), "free_item": m.FreeItem(category="shirts"),
    "trial": m.Trial(),
    "offer": m.Offer(basket_uplift=0.2), "set_tier": m.SetTier(tier="gold", by=-1),
    "grant_credit": m.GrantCredit(line="card", limit=m.Expr("100"), raise_by=m.Expr("50")),
    "referral_reward": m.ReferralReward(ledger="p", referrer=200, referred=100),
}


def explain_gaps() -> list[str]:
    """Registered actions with no example here, or whose handler has no words (its explain raises)."""
    gaps = sorted(set(handlers()) ^ set(EXAMPLES))
    for tag, act in EXAMPLES.items():
        if tag in handlers():
            try:
                explain(m.Policy(name="x", points={"p": m.PointsLedger()},
                                 rules=(m.Rule(id="r", on=m.OnPurchase(), do=(act,)),)))
            except NotImplementedError:
                gaps.append(tag)
    return gaps


def reference_gaps(text: str) -> list[str]:
    """Registered actions that docs/POLICIES.md does not mention."""
    return [tag for tag in handlers() if not _mentioned(tag, text)]


def test_every_registered_action_has_an_explain_example():
    assert explain_gaps() == []


def test_reference_mentions_every_registered_action(reference):
    assert reference_gaps(reference) == []


def test_explain_has_words_for_every_trigger_and_action():
    triggers = [cls() for cls in m.Trigger.__args__]
    actions = [EXAMPLES[tag] for tag in handlers()]
    rules = tuple(m.Rule(id=f"t_{t.tag}", on=t, do=(actions[i % len(actions)],)) for i, t in enumerate(triggers))
    rules += tuple(m.Rule(id=f"a_{a.tag}", on=m.OnPurchase(), do=(a,)) for a in actions)
    policy = m.Policy(name="all", participation=0.5, points={"p": m.PointsLedger(lot_days=1, expiry_days=90)},
                      credit={"card": m.CreditLine(delinquent_after_missed=1)},
                      tiers=m.Tiers(levels={"member": m.TierLevel(), "gold": m.TierLevel(qualify=20)},
                                    metric="purchases"),
                      rules=rules)
    text = explain(policy)
    lines = {r.id: text.split(f"'{r.id}'")[1].split("\n  ")[0] for r in rules}
    for rid, line in lines.items():
        assert "On '" not in line and "\n       - '" not in line, (rid, line)  # no fallback to a bare tag
    assert "Points expire 90 days after the day they are earned" in text
    assert "from 20 purchases" in text and "50% of customers join" in text
    for phrase in ("Every month on day 1", "Who takes part", "birthday", "anniversary",
                   "contacts the store", "tier review", "referred joins", "store visit", "joins the programme",
                   "without a purchase", "take 10 points", "up to twice on one purchase", "$4 off this purchase",
                   "voucher for $7", "from 'shirts'", "free trial of the category the customer buys least",
                   "spend 20% more per basket",
                   "set the customer's tier to 'gold', then move the customer's tier down 1 level",
                   "the limit becomes at least $100, then the limit rises by $50",
                   "referrer 200 points and the new customer 100"):
        assert phrase in text, phrase

"""The outcome registry: what it accepts, and that every reader of outcome metadata reads it."""

from __future__ import annotations

import math

import pytest

from lab.metrics.outcomes import FOREST, HEADLINE, OUTCOMES, REGISTRY
from lab.metrics.registry import UNITS, Direction, Outcome, Registry
from lab.report.figures import FOREST_OUTCOMES
from lab.report.text import check_outcomes, is_good, outcome_name, outcome_unit


def _one(record) -> float:
    return 1.0


def test_an_outcome_needs_a_known_unit_an_identifier_a_label_and_a_description() -> None:
    with pytest.raises(ValueError,
                       match=r"unit 'dollars' is not one of \$, share, customers, purchases, 0-1, per year$"):
        Outcome("x", "x", "dollars", Direction.HIGHER, "d", _one)
    with pytest.raises(ValueError, match="not an identifier"):
        Outcome("net profit", "x", "$", Direction.HIGHER, "d", _one)
    with pytest.raises(ValueError, match="needs a label and a description"):
        Outcome("x", "", "$", Direction.HIGHER, "d", _one)
    with pytest.raises(ValueError, match="needs a label and a description"):
        Outcome("x", "x", "$", Direction.HIGHER, "", _one)


def test_a_name_is_registered_once() -> None:
    a = Outcome("x", "x", "$", Direction.HIGHER, "d", _one)
    with pytest.raises(ValueError, match="'x' is registered twice"):
        Registry([a, a])


def test_a_selection_names_registered_outcomes_only() -> None:
    reg = Registry([Outcome("x", "x", "$", Direction.HIGHER, "d", _one),
                    Outcome("y", "why", "share", Direction.NEITHER, "e", _one)])
    assert reg.selection(("y", "x")) == ("y", "x")
    with pytest.raises(ValueError, match="not registered outcomes: z, w$"):
        reg.selection(("x", "z", "w"))
    assert reg.names == ("x", "y") and len(reg) == 2 and list(reg) == ["x", "y"]
    assert reg.evaluate(None) == {"x": 1.0, "y": 1.0}


def test_direction_gives_higher_is_better() -> None:
    make = lambda d: Outcome("x", "x", "$", d, "d", _one)  # noqa: E731
    assert make(Direction.HIGHER).higher_is_better is True
    assert make(Direction.LOWER).higher_is_better is False
    assert make(Direction.NEITHER).higher_is_better is None


def test_the_registry_holds_every_outcome_once_with_its_metadata() -> None:
    assert len(REGISTRY) == 24  # 19 + the lapsed liability and the stranded breakage (issue 13, item 3) + the
    # launch customers' revenue, their member share and the naive member gap (self-selection, issue 11)
    for o in REGISTRY.values():
        assert o.unit in UNITS and o.label and o.description and callable(o.formula)
    assert HEADLINE == ("net_profit", "revenue", "retention_12m", "active_customers")
    assert FOREST == (*HEADLINE, "mean_clv", "customer_satisfaction")
    assert FOREST_OUTCOMES == FOREST


def test_the_legacy_view_is_derived_from_the_registry() -> None:
    assert list(OUTCOMES) == list(REGISTRY)
    for name, (unit, hib, description) in OUTCOMES.items():
        o = REGISTRY[name]
        assert (unit, hib, description) == (o.unit, o.higher_is_better, o.description)


def test_the_text_reads_labels_units_and_directions_from_the_registry() -> None:
    assert outcome_name("retention_12m") == "12-month retention"
    assert outcome_name("mean_clv") == "mean customer lifetime value"
    assert outcome_name("net_profit") == "net profit"
    assert outcome_name("service_load") == "service load"  # not an outcome: its identifier in words
    assert outcome_unit("breakage_rate") == "share" and outcome_unit("nonsense") == ""
    assert is_good("net_profit", 5.0) is True and is_good("net_profit", -5.0) is False
    assert is_good("programme_cost", 5.0) is False and is_good("programme_cost", -5.0) is True
    assert is_good("breakage_rate", 0.1) is None
    assert is_good("revenue", 0.0) is None and is_good("revenue", math.nan) is None
    assert is_good("nonsense", 1.0) is None
    check_outcomes(REGISTRY.names)
    with pytest.raises(ValueError, match="did you mean 'net_profit'"):
        check_outcomes(["net_profti"])

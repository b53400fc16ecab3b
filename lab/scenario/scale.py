"""A store at another size: scale the whole store with its customers, and say when a store runs at a size it
was not written for.

A scenario's store is written for its `population.customers`: its staff, fixed costs, marketing budget
and market are sized for that many customers. Running it with another number of customers and nothing
else changed (`--customers N` alone) changes the store's economics, not only its size: at a quarter of
the customers the apparel store still pays the full warehouse, staff and marketing of a store four times
as big, so its no-programme net profit swings from +$611k to -$1.8M. `scale_store` makes the other
reading available: a store like this one, `customers / written` times the size, with

* fixed costs, the marketing budget and the market's spend multiplied by the factor (marketing's cost
  per acquisition stays, so acquisitions scale too);
* staff capacity, wages and hiring costs multiplied by the factor. Staff come in whole people, so the
  headcount is rounded (at least one) and the work one person does is adjusted to keep the totals exactly
  proportional: `contacts_per_day`, `wage_per_year` and `hiring_cost` are multiplied by
  `exact headcount / rounded headcount`. Per-person rates (turnover, experience, satisfaction) and the
  profit-sharing share stay, so the bonus relative to a wage is unchanged.

Per-customer quantities (segments, prices, margins, behaviour) and the policies' per-member costs need
no scaling. A policy's fixed budgets (a rule's `budget`, the programme's `budget`) are the policy's, not
the store's, and stay as written.

`size_note` gives the words the run's output and the report print about the size.
"""

from __future__ import annotations

import dataclasses

from lab.scenario.model import Scenario

__all__ = ["SCALED_MARK", "scale_factor", "scale_store", "scaled_from", "size_note"]

# what a scaled scenario's description ends with (the report reads it back with `scaled_from`)
SCALED_MARK = " [store scaled from {written} customers]"


def scale_factor(scenario: Scenario, customers: int) -> float:
    """How many times the written store a run of `customers` customers is."""
    return customers / scenario.population.customers


def scale_store(scenario: Scenario, customers: int) -> Scenario:
    """The scenario's store scaled to `customers` starting customers (see the module's docstring)."""
    if customers < 1:
        raise ValueError(f"a store needs at least 1 customer, got {customers}")
    written = scenario.population.customers
    if customers == written:
        return scenario
    f = customers / written
    store, staff, marketing = scenario.store, scenario.store.staff, scenario.store.marketing
    exact = staff.count * f
    count = max(1, round(exact))
    per_head = exact / count
    new_staff = dataclasses.replace(staff, count=count, contacts_per_day=staff.contacts_per_day * per_head,
                                    wage_per_year=staff.wage_per_year * per_head,
                                    hiring_cost=staff.hiring_cost * per_head)
    new_store = dataclasses.replace(store, staff=new_staff, fixed_cost_per_year=store.fixed_cost_per_year * f,
                                    marketing=dataclasses.replace(marketing,
                                                                  budget_per_year=marketing.budget_per_year * f))
    original = scaled_from(scenario) or written
    description = scenario.description.split(" [store scaled from ")[0] + SCALED_MARK.format(written=original)
    return dataclasses.replace(
        scenario, description=description, store=new_store,
        market=dataclasses.replace(scenario.market, spend_per_year=scenario.market.spend_per_year * f),
        population=dataclasses.replace(scenario.population, customers=customers))


def scaled_from(scenario: Scenario) -> int | None:
    """The customers the store was written for, when `scale_store` made this scenario; else None."""
    head, sep, tail = scenario.description.rpartition(" [store scaled from ")
    if not sep or not tail.endswith(" customers]"):
        return None
    digits = tail[: -len(" customers]")]
    return int(digits) if digits.isdigit() else None


def size_note(scenario: Scenario, customers: int | None) -> str | None:
    """One sentence when the run's size is not the size its store was written for; None when it is."""
    run = customers or scenario.population.customers
    original = scaled_from(scenario)
    if original is not None:
        return (f"The store '{scenario.name}' was written for {original:,} customers; it runs with {run:,}, scaled "
                f"as a whole (staff, fixed costs, marketing budget and market size x {run / original:.3g}).")
    written = scenario.population.customers
    if run == written:
        return None
    return (f"The store '{scenario.name}' was written for {written:,} customers but runs with {run:,}: its staff, "
            "fixed costs, marketing budget and market size stay as written, so its profit is not that of a store "
            f"of this size. Pass --scale-store to scale the whole store with its customers.")

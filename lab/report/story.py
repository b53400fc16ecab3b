"""A customer's story in words, for teachers: what `lab trace` prints.

The reference engine (`ReferenceSimulation(..., follow=[id]).trace(id)`) records
one customer's events; `format_story` turns them into one line per event --
the day and time, what happened, the money, the balances afterwards and the
customer's satisfaction -- and a closing line on the customer's fate. The words
for what an action gave (a redeemed reward, a free item, a voucher...) are the
action handler's (lab.policy.actions), told with the formats defined here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lab.policy import model as pm
from lab.policy.actions import Phrases, story_handler
from lab.policy.runtime import CompiledPolicy
from lab.scenario.model import Scenario


def _money(x: float) -> str:
    return f"-${-x:,.2f}" if x < 0 else f"${x:,.2f}"


def _points(x: float) -> str:
    return f"{x:,.0f}" if abs(x - round(x)) < 1e-9 else f"{x:,.2f}"


_PHRASES = Phrases(money=_money, points=_points)  # the formats lent to the action handlers for their story words


def _rules(e: Mapping[str, Any]) -> str:
    rules = e.get("rules") or ()
    return f" [{', '.join(rules)}]" if rules else ""


def _what(e: Mapping[str, Any], policy: pm.Policy) -> str:
    """The middle of an event's line: what happened, in words."""
    kind = e["kind"]
    amount = float(e.get("amount", 0.0))
    if kind == "acquired":
        how = f"referred by customer {e['referred_by']}" if e.get("referred_by") is not None else "a new customer"
        if policy.is_baseline:
            joined = "no programme to join"
        elif e.get("before_launch"):
            joined = "before the programme's launch"
        else:
            joined = "joined the programme" if e.get("member") else "did not join the programme"
        return f"arrived: {how} ({e.get('segment', '?')}); {joined}"
    if kind == "launch":
        return "the programme launches: " + ("joined it" if e.get("member") else "did not join it")
    if kind == "purchase":
        text = f"purchase #{e.get('number', '?')}: {e.get('category', '?')} for {_money(amount)}"
        if e.get("discount", 0.0) > 0:
            text += f", {_money(e['discount'])} off"
        text += f", paid {_money(e.get('paid', amount))}"
        if e.get("credit", 0.0) > 0:
            text += f" ({_money(e['credit'])} on credit)"
        return text + _rules(e)
    if kind == "points":
        ledger = e.get("ledger", "points")
        if amount >= 0:
            return f"earned {_points(amount)} {ledger} ({e.get('reason', 'rule')})"
        return f"lost {_points(-amount)} {ledger} (deducted, {e.get('reason', 'rule')})"
    if kind == "reward":  # a reward an action gave: the action's handler has the words
        what = e.get("what")
        handler = story_handler(str(what))
        if handler is not None:
            return handler.story(e, _PHRASES)
        return f"reward: {what} ({_money(amount)})"
    if kind == "discount":
        sources = e.get("sources") or ()
        return f"{_money(amount)} off the purchase" + (f" ({', '.join(sources)})" if sources else "")
    if kind == "expiry":
        value = amount * policy.points[e["ledger"]].value if e.get("ledger") in policy.points else None
        worth = f" (worth {_money(value)})" if value is not None else ""
        return f"{_points(amount)} {e.get('ledger', 'points')} expired{worth}"
    if kind == "statement":
        line = e.get("line", "credit")
        paid = "missed the payment" if e.get("missed") else f"paid {_money(amount)}"
        text = f"{line} statement: {paid}"
        if e.get("interest", 0.0) > 0:
            text += f", {_money(e['interest'])} interest"
        if e.get("fee", 0.0) > 0:
            text += f", {_money(e['fee'])} late fee"
        if e.get("written_off", 0.0) > 0:
            text += f"; {_money(e['written_off'])} written off, line closed"
        return text
    if kind == "contact":
        what = "complaint" if e.get("complaint") else "inquiry"
        return f"service contact: {what}, handled {'well' if e.get('resolved') else 'badly'}"
    if kind == "tier":
        return f"tier: {e.get('was', '?')} -> {e.get('tier', '?')}"
    if kind == "dropout":
        return f"dropped out: {e.get('reason', 'stopped buying')}"
    return kind


def _balances(e: Mapping[str, Any]) -> str:
    b = e.get("balances") or {}
    parts = [f"{name} {_points(v)}" for name, v in (b.get("points") or {}).items()]
    parts += [f"{name} owes {_money(v)}" for name, v in (b.get("credit") or {}).items()]
    return ", ".join(parts)


def format_story(events: Sequence[Mapping[str, Any]], customer_id: int, scenario: Scenario,
                 policy: pm.Policy | CompiledPolicy) -> str:
    """One customer's life as text: a heading, one line per event, and a closing line on their fate."""
    pol: pm.Policy = policy.policy if isinstance(policy, CompiledPolicy) else policy
    if not events:
        return f"Customer {customer_id}: no events were recorded (was the customer followed, and did they arrive?)."
    arrival = next((e for e in events if e["kind"] == "acquired"), None)
    segment = arrival.get("segment", "?") if arrival else "?"
    head = f"Customer {customer_id} of '{scenario.name}' ({segment}), under policy '{pol.name}'"
    if pol.description:
        head += f": {pol.description}"
    lines = [head, f"{'day':>8}  {'event':<10} {'what happened':<66} {'balances':<24} satisfaction"]
    for e in events:
        if e["kind"] == "end":
            continue
        lines.append(f"{e['time']:8.2f}  {e['kind']:<10} {_what(e, pol):<66} {_balances(e):<24} "
                     f"{e.get('satisfaction', float('nan')):.2f}")
    lines.append(_fate(events, pol))
    return "\n".join(lines)


def _fate(events: Sequence[Mapping[str, Any]], policy: pm.Policy) -> str:
    """The closing line: dropped out or still a customer, purchases, spend, what is left on their accounts."""
    purchases = [e for e in events if e["kind"] == "purchase"]
    spent = sum(float(e.get("paid", e.get("amount", 0.0))) for e in purchases)
    end = next((e for e in reversed(events) if e["kind"] == "end"), None)
    drop = next((e for e in events if e["kind"] == "dropout"), None)
    tally = f"{len(purchases)} purchase{'s' if len(purchases) != 1 else ''}, {_money(spent)} spent"
    if drop is not None:
        text = f"Fate: dropped out on day {drop['time']:.2f} ({drop.get('reason', 'stopped buying')}) after {tally}"
    elif end is not None:
        text = f"Fate: still a customer at the end (day {end['time']:.0f}) after {tally}"
    else:
        text = f"Fate: still a customer at the last event (day {events[-1]['time']:.2f}) after {tally}"
    last = end if end is not None else events[-1]
    balances = last.get("balances") or {}
    left = []
    for name, pts in (balances.get("points") or {}).items():
        if pts > 0:
            value = pts * policy.points[name].value if name in policy.points else 0.0
            left.append(f"{_points(pts)} {name} unused (worth {_money(value)})")
    for name, owed in (balances.get("credit") or {}).items():
        if owed > 0:
            left.append(f"{_money(owed)} still owed on {name}")
    return text + ("; " + "; ".join(left) if left else "") + "."


def _cell(e: Mapping[str, Any] | None, policy: pm.Policy, width: int) -> str:
    if e is None:
        return " " * width
    text = f"{e.get('satisfaction', float('nan')):.2f} {_what(e, policy)}"
    return text[: width - 1] + "…" if len(text) > width else text.ljust(width)


Row = tuple[float, "Mapping[str, Any] | None", "Mapping[str, Any] | None"]


def _rows(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]]) -> list[Row]:
    """The two stories merged in time order; at one moment, events of the same kind share a row (aligned in
    order by kind, so an extra event under one policy does not push the others out of line)."""
    from difflib import SequenceMatcher

    def moments(events: Sequence[Mapping[str, Any]]) -> dict[float, list[Mapping[str, Any]]]:
        out: dict[float, list[Mapping[str, Any]]] = {}
        for e in events:
            if e["kind"] != "end":
                out.setdefault(round(float(e["time"]), 9), []).append(e)
        return out

    ma, mb = moments(a), moments(b)
    rows: list[Row] = []
    for t in sorted(set(ma) | set(mb)):
        ga, gb = ma.get(t, []), mb.get(t, [])
        i = j = 0
        matcher = SequenceMatcher(a=[e["kind"] for e in ga], b=[e["kind"] for e in gb], autojunk=False)
        for block in matcher.get_matching_blocks():
            while i < block.a:
                rows.append((t, ga[i], None))
                i += 1
            while j < block.b:
                rows.append((t, None, gb[j]))
                j += 1
            for k in range(block.size):
                rows.append((t, ga[i + k], gb[j + k]))
            i, j = i + block.size, j + block.size
    return rows


def format_side_by_side(events_a: Sequence[Mapping[str, Any]], events_b: Sequence[Mapping[str, Any]],
                        customer_id: int, scenario: Scenario, policy_a: pm.Policy | CompiledPolicy,
                        policy_b: pm.Policy | CompiledPolicy, width: int = 64) -> str:
    """One customer under two policies, side by side: a row per moment, each policy's event in its column
    (the runs share their random streams, so the same shopping trip happens at the same moment in both until
    the policies make the customer's life differ), and each policy's closing line on the customer's fate."""
    pa: pm.Policy = policy_a.policy if isinstance(policy_a, CompiledPolicy) else policy_a
    pb: pm.Policy = policy_b.policy if isinstance(policy_b, CompiledPolicy) else policy_b
    arrival = next((e for e in [*events_a, *events_b] if e["kind"] == "acquired"), None)
    segment = arrival.get("segment", "?") if arrival else "?"
    lines = [f"Customer {customer_id} of '{scenario.name}' ({segment}), under '{pa.name}' and '{pb.name}' "
             "(satisfaction, then what happened)",
             f"{'day':>8}  {pa.name[:width]:<{width}} | {pb.name[:width]}"]
    for t, ea, eb in _rows(events_a, events_b):
        lines.append(f"{t:8.2f}  {_cell(ea, pa, width)} | {_cell(eb, pb, width).rstrip()}")
    lines.append(f"{pa.name}: {_fate(events_a, pa)}" if events_a else f"{pa.name}: no events were recorded.")
    lines.append(f"{pb.name}: {_fate(events_b, pb)}" if events_b else f"{pb.name}: no events were recorded.")
    return "\n".join(lines)

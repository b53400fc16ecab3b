"""Synthetic customers as columns: one numpy array per attribute, one row per customer (the columns the engine reads
together for a customer share each customer's cache line: `Column.row_group`).

Customer i's traits are drawn from counter-based streams keyed by i, so the
same customer has the same purchase rate, dropout probability, spend scale
and tastes under every policy, even when policies acquire different numbers
of customers (common random numbers). Traits follow the buy-till-you-die
family: purchase rates lambda ~ Gamma(r, alpha); BG/NBD dropout p ~ Beta(a, b)
or Pareto/NBD dropout rates mu ~ Gamma(s, beta); Gamma-Gamma spend scales
nu ~ Gamma(q, gamma). Rates are stored per day.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, ClassVar, get_type_hints

import numpy as np

from lab.randomness import Streams, beta_quantile, gamma_quantile
from lab.scenario.model import TIME_UNIT_DAYS, BGNBD, Scenario



#: The bytes of memory the processor fetches at once (a cache line on x86-64 and most ARM cores).
CACHE_LINE = 64


@dataclass(frozen=True)
class Column:
    """The declaration of one customer column: one value per customer (or per customer and category).

    `row_group`: columns of one group are stored side by side, each customer's values in one cache line, because
    the engine reads them together for a customer (every purchase candidate, or every purchase). Gathering them
    from a million-row population for a day's candidates then touches one cache line a customer, not one a
    column. A column in no group ("") is an array of its own. The values, and every result, are the same either
    way; only the speed differs (benchmarks/README.md, "Columns read together, stored together"). A copy
    (copy.deepcopy, pickle) holds each column as an array of its own until it next grows."""

    dtype: type
    unit: str  # "" for flags and codes
    meaning: str
    per_category: bool = False  # one value per category: a (customers, categories) array
    row_group: str = ""


@dataclass(frozen=True)
class SegmentTable:
    """Per-segment parameters as arrays indexed by segment code (per-day units)."""

    names: tuple[str, ...]
    share: np.ndarray
    pareto: np.ndarray
    r: np.ndarray
    alpha_days: np.ndarray
    a: np.ndarray
    b: np.ndarray
    s: np.ndarray
    beta_days: np.ndarray
    spend_p: np.ndarray
    spend_q: np.ndarray
    spend_gamma: np.ndarray
    cat_pref: np.ndarray  # (segments, categories), rows sum to 1
    concentration: np.ndarray
    reward_sensitivity: np.ndarray
    credit_appetite: np.ndarray
    default_risk: np.ndarray
    repay_share: np.ndarray
    referral_propensity: np.ndarray
    contact_rate_day: np.ndarray
    complaint_share: np.ndarray
    satisfaction: np.ndarray
    variety_seeking: np.ndarray

    @staticmethod
    def from_scenario(sc: Scenario) -> "SegmentTable":
        cats = list(sc.store.categories)
        market_share = np.array([sc.store.categories[c].share for c in cats], dtype=float)
        rows: dict[str, list[float]] = {k: [] for k in (
            "share", "pareto", "r", "alpha_days", "a", "b", "s", "beta_days", "spend_p", "spend_q", "spend_gamma",
            "concentration", "reward_sensitivity", "credit_appetite", "default_risk", "repay_share",
            "referral_propensity", "contact_rate_day", "complaint_share", "satisfaction", "variety_seeking")}
        prefs = []
        for seg in sc.population.segments.values():
            pm = seg.purchases
            unit = TIME_UNIT_DAYS[pm.time_unit]
            rows["share"].append(seg.share)
            rows["r"].append(pm.r)
            rows["alpha_days"].append(pm.alpha * unit)
            # each dropout model's parameters; the other model's are placeholders never used
            if isinstance(pm, BGNBD):
                dropout = {"pareto": 0.0, "a": pm.a, "b": pm.b, "s": 0.0, "beta_days": 1.0}
            else:
                dropout = {"pareto": 1.0, "a": 1.0, "b": 1.0, "s": pm.s, "beta_days": pm.beta * unit}
            for key, value in dropout.items():
                rows[key].append(value)
            rows["spend_p"].append(seg.spend.p)
            rows["spend_q"].append(seg.spend.q)
            rows["spend_gamma"].append(seg.spend.gamma)
            rows["concentration"].append(seg.category_concentration)
            rows["reward_sensitivity"].append(seg.reward_sensitivity)
            rows["credit_appetite"].append(seg.credit_appetite)
            rows["default_risk"].append(seg.default_risk)
            rows["repay_share"].append(seg.repay_share)
            rows["referral_propensity"].append(seg.referral_propensity)
            rows["contact_rate_day"].append(seg.service_contact_rate / 365.0)
            rows["complaint_share"].append(seg.complaint_share)
            rows["satisfaction"].append(seg.satisfaction)
            rows["variety_seeking"].append(seg.variety_seeking)
            pref = np.array([seg.categories.get(c, market_share[i]) for i, c in enumerate(cats)], dtype=float)
            prefs.append(pref / pref.sum())
        arr = {k: np.asarray(v, dtype=float) for k, v in rows.items()}
        arr["share"] = arr["share"] / arr["share"].sum()
        arr["pareto"] = arr["pareto"].astype(bool)
        return SegmentTable(names=tuple(sc.population.segments), cat_pref=np.vstack(prefs), **arr)


class Customers:
    """The population's columns, with room to grow as customers are acquired.

    Each column is declared once, below, with its dtype, unit and meaning; the
    constructor and growth read the declarations (`COLUMNS`). Rows beyond `n`
    are spare capacity."""

    # traits, drawn once when the customer arrives (the same under every policy)
    seg: Annotated[np.ndarray, Column(np.int64, "", "segment code (an index into the SegmentTable)")]
    lam: Annotated[np.ndarray, Column(np.float64, "per day", "base purchase rate, lambda ~ Gamma(r, alpha)",
                                      row_group="candidate")]
    p_drop: Annotated[np.ndarray, Column(np.float64, "probability",
                                         "BG/NBD: dropout chance after a repeat purchase, "
                                         "p ~ Beta(a, b) (0: Pareto/NBD)", row_group="purchase")]
    mu: Annotated[np.ndarray, Column(np.float64, "per day",
                                     "Pareto/NBD: dropout rate, mu ~ Gamma(s, beta) (0 for BG/NBD)")]
    nu: Annotated[np.ndarray, Column(np.float64, "per dollar", "Gamma-Gamma spend scale: a basket is Gamma(p) / nu",
                                     row_group="purchase")]
    pareto: Annotated[np.ndarray, Column(np.bool_, "", "whether the customer follows Pareto/NBD (else BG/NBD)")]
    birthday: Annotated[np.ndarray, Column(np.int64, "day of year", "birthday, 1 to 365")]
    sat_ref: Annotated[np.ndarray, Column(np.float64, "0 to 1",
                                          "reference satisfaction (the segment's): where it rests",
                                          row_group="candidate")]
    # arrival and departure
    acquired_at: Annotated[np.ndarray, Column(np.float64, "day", "when the customer arrived and made a trial purchase",
                                              row_group="candidate")]
    alive: Annotated[np.ndarray, Column(np.bool_, "", "whether the customer is still a customer")]
    dropped_at: Annotated[np.ndarray, Column(np.float64, "day", "when the customer dropped out (NaN while alive)")]
    death_time: Annotated[np.ndarray, Column(np.float64, "day", "Pareto/NBD: when the lifetime ends (inf for BG/NBD)")]
    d_mult: Annotated[np.ndarray, Column(np.float64, "multiplier",
                                         "Pareto/NBD: the dropout multiplier the remaining lifetime is scaled to")]
    referred: Annotated[np.ndarray, Column(np.bool_, "", "whether the customer came by referral")]
    referred_by: Annotated[np.ndarray, Column(np.int64, "customer id", "who referred the customer (-1: no one)")]
    # the clocks of the customer's own events, with the counters of their random streams
    next_cand: Annotated[np.ndarray, Column(np.float64, "day", "time of the next purchase candidate (thinning)",
                                            row_group="candidate")]
    cand_n: Annotated[np.ndarray, Column(np.int64, "candidates",
                                         "purchase candidates drawn so far (the gap stream's counter)")]
    next_contact: Annotated[np.ndarray, Column(np.float64, "day", "time of the next service contact (inf: none)")]
    contact_n: Annotated[np.ndarray, Column(np.int64, "contacts",
                                            "service contacts drawn so far (the contact streams' counter)")]
    # what the customer has bought
    purchases: Annotated[np.ndarray, Column(np.int64, "purchases", "purchases so far", row_group="purchase")]
    revenue: Annotated[np.ndarray, Column(np.float64, "dollars", "spend so far, after discounts", row_group="purchase")]
    gross: Annotated[np.ndarray, Column(np.float64, "dollars", "spend so far, before discounts", row_group="purchase")]
    discounts: Annotated[np.ndarray, Column(np.float64, "dollars", "discounts received so far", row_group="purchase")]
    last_purchase: Annotated[np.ndarray, Column(np.float64, "day", "time of the last purchase (the arrival at first)",
                                                row_group="purchase")]
    clv: Annotated[np.ndarray, Column(np.float64, "dollars",
                                      "margin so far net of reward goods, discounted to arrival", row_group="purchase")]
    referrals: Annotated[np.ndarray, Column(np.int64, "customers", "customers this customer has referred")]
    cat_cum: Annotated[np.ndarray, Column(np.float64, "share",
                                          "cumulative category tastes, for drawing a purchase's category",
                                          per_category=True)]
    cat_n: Annotated[np.ndarray, Column(np.float32, "purchases", "purchases in each category", per_category=True)]
    cat_spend: Annotated[np.ndarray, Column(np.float64, "dollars", "spend in each category, after discounts",
                                            per_category=True)]
    # how the programme has moved the customer
    sat_at: Annotated[np.ndarray, Column(np.float64, "0 to 1", "satisfaction when last recorded",
                                         row_group="candidate")]
    t_sat: Annotated[np.ndarray, Column(np.float64, "day", "when sat_at was recorded", row_group="candidate")]
    lam_mult: Annotated[np.ndarray, Column(np.float64, "multiplier",
                                           "the customer's own purchase-rate multiplier (trials adopted)",
                                           row_group="candidate")]
    offer_until: Annotated[np.ndarray, Column(np.float64, "day", "when the offer the customer took up ends (0: none)",
                                              row_group="candidate")]
    offer_freq: Annotated[np.ndarray, Column(np.float64, "share", "purchase-frequency uplift of that offer")]
    offer_basket: Annotated[np.ndarray, Column(np.float64, "share", "basket-size uplift of that offer")]
    heat: Annotated[np.ndarray, Column(np.float64, "rewards",
                                       "recent rewards, fading with the satisfaction memory (habituation)")]
    t_heat: Annotated[np.ndarray, Column(np.float64, "day", "when heat was last brought up to date")]

    COLUMNS: ClassVar[dict[str, Column]]  # every column's declaration, by name (filled in from the annotations above)

    def __init__(self, segments: SegmentTable, n_categories: int, capacity: int) -> None:
        self.segments = segments
        self.n_categories = n_categories
        self.n = 0
        self.capacity = 0
        for name, col in self.COLUMNS.items():
            setattr(self, name, np.zeros((0, n_categories) if col.per_category else 0, dtype=col.dtype))
        self._reserve(capacity)

    def zeroed(self, capacity: int) -> Iterator[dict[str, np.ndarray]]:
        """Every column, `capacity` rows of zeros, laid out as declared, one block of memory at a time: a row
        group's columns together (the fields of one record per customer, the records aligned to cache lines:
        `Column.row_group`), every other column alone. A block is allocated only when the next is asked for, so a
        caller that moves each block in before asking holds at most one block twice (growing a large population)."""
        for group, names in ROW_GROUPS.items():
            record = _RECORDS[group]
            raw = np.zeros(capacity * record.itemsize + CACHE_LINE, dtype=np.uint8)
            start = -raw.ctypes.data % CACHE_LINE
            records = raw[start:start + capacity * record.itemsize].view(record)
            yield {name: records[name] for name in names}
        for name, col in self.COLUMNS.items():
            if not col.row_group:
                yield {name: np.zeros((capacity, self.n_categories) if col.per_category else capacity, dtype=col.dtype)}

    def _reserve(self, capacity: int) -> None:
        if capacity <= self.capacity:
            return
        for block in self.zeroed(capacity):
            for name, b in block.items():
                b[: self.n] = getattr(self, name)[: self.n]
                setattr(self, name, b)
        self.capacity = capacity

    def add(self, count: int, times: np.ndarray, streams: Streams, referred_by: np.ndarray | None = None,
            first: int | None = None, rows: np.ndarray | None = None) -> np.ndarray:
        """Acquire `count` customers at `times`; returns their ids (consecutive).

        `referred_by`: who referred each of them (-1 for no one), or None when no one did. `first` or `rows`:
        the row the new customers start at, or the rows they take, when the caller keeps the rows (a stack of
        worlds, lab.engine.stack: it has made room, and `streams` there keys each row by its world and its id
        within it); by default they follow the last customer. Every column of a new customer is a function
        of its own draws, so customers added together get what they would get added one call at a time."""
        if count == 0:
            return np.zeros(0, dtype=np.int64)
        new: slice | np.ndarray
        if rows is not None:
            ids = new = np.asarray(rows, dtype=np.int64)
        else:
            if first is None:
                if self.n + count > self.capacity:
                    self._reserve(max(self.n + count, int(self.capacity * 1.5) + 1024))
                first = self.n
                self.n += count
            ids = np.arange(first, first + count, dtype=np.int64)
            new = slice(first, first + count)  # the same rows as ids: writing through a slice is cheaper
        st = self.segments
        S, C = len(st.share), self.n_categories
        u = streams.uniforms(("segment", "lambda", "nu", "birthday", *(f"taste{c}" for c in range(C))), ids,
                             np.zeros(count, dtype=np.int64))
        seg = np.minimum(np.searchsorted(np.cumsum(st.share), u[0], side="right"), S - 1)
        self.seg[new] = seg
        pareto = st.pareto[seg]
        # the gamma draws of the new customers: purchase rates, spend scales and tastes (kind by kind for a large
        # cohort, in one pass for a few arrivals; a draw depends only on its shape and uniform, so either way gives
        # the same numbers)
        shapes = np.concatenate([st.r, st.spend_q, (st.cat_pref * st.concentration[:, None]).T.reshape(-1)])
        with np.errstate(all="ignore"):
            if count > 1 << 16:
                g = np.concatenate([gamma_quantile(shapes[k * S : (k + 1) * S], u[1 + k + (k >= 2)], code=seg)
                                    for k in range(2 + C)])
            else:
                codes = np.concatenate([seg + k * S for k in range(2 + C)])
                g = gamma_quantile(shapes, np.concatenate([u[1], u[2], *u[4:]]), code=codes)
            self.lam[new] = g[:count] / st.alpha_days[seg]
            # each dropout model's trait is drawn only for the customers who follow it (the others keep 0)
            bg = np.flatnonzero(~pareto)
            par = np.flatnonzero(pareto)
            p_drop = np.zeros(count)
            mu = np.zeros(count)
            if bg.size:
                sb = seg[bg]
                p_drop[bg] = beta_quantile(st.a, st.b, streams.uniform("dropout_p", ids[bg], 0), code=sb)
            if par.size:
                sp = seg[par]
                mu[par] = gamma_quantile(st.s, streams.uniform("mu", ids[par], 0), code=sp) / st.beta_days[sp]
            self.p_drop[new] = p_drop
            self.mu[new] = mu
            self.nu[new] = g[count : 2 * count] / st.spend_gamma[seg]
        self.pareto[new] = st.pareto[seg]
        self.acquired_at[new] = times
        self.alive[new] = True
        self.dropped_at[new] = np.nan
        death = np.full(count, np.inf)
        if par.size:
            death[par] = (np.broadcast_to(np.asarray(times, dtype=np.float64), (count,))[par]
                          + streams.exponential("death", ids[par], 0) / np.maximum(mu[par], 1e-300))
        self.death_time[new] = death
        self.last_purchase[new] = times
        self.sat_ref[new] = st.satisfaction[seg]
        self.sat_at[new] = st.satisfaction[seg]
        self.t_sat[new] = times
        self.lam_mult[new] = 1.0
        self.d_mult[new] = 1.0
        self.birthday[new] = np.floor(u[3] * 365).astype(np.int64) + 1
        if referred_by is None:
            self.referred[new] = False
            self.referred_by[new] = -1
        else:
            self.referred[new] = np.asarray(referred_by) >= 0
            self.referred_by[new] = referred_by
        # tastes: a Dirichlet around the segment's preferences, from the gamma draws above
        taste = np.maximum(g[2 * count :].reshape(C, count).T, 1e-12)
        self.cat_cum[new] = np.cumsum(taste / taste.sum(axis=1, keepdims=True), axis=1)
        return ids

    def add_existing(self, base, streams: Streams) -> np.ndarray:
        """Add an existing customer base (a lab.population.existing.ExistingBase) at time 0, the calibration end.

        Their history is the starting state the rules see: purchases so far (the first included), spend,
        tenure (acquired `age` days before 0), last purchase and category counts; the ones drawn as gone
        left right after their last purchase. Returns their ids (0 .. n-1: call it on an empty population)."""
        h = base.history
        count = h.n
        if self.n != 0:
            raise ValueError("add_existing: the existing base must be the first customers added")
        if count > self.capacity:
            self._reserve(count)
        ids = np.arange(count, dtype=np.int64)
        new = slice(0, count)
        self.n = count
        st = self.segments
        seg = h.segment
        self.seg[new] = seg
        self.lam[new] = base.lam
        self.p_drop[new] = base.p_drop
        self.mu[new] = 0.0
        self.nu[new] = base.nu
        self.pareto[new] = False
        self.acquired_at[new] = -h.age_days
        last = h.recency_days - h.age_days
        self.alive[new] = base.alive
        self.dropped_at[new] = np.where(base.alive, np.nan, last)
        self.death_time[new] = np.inf
        self.d_mult[new] = 1.0
        self.referred[new] = False
        self.referred_by[new] = -1
        self.purchases[new] = (h.x + 1).astype(np.int64)
        self.revenue[new] = h.revenue
        self.gross[new] = h.revenue
        self.last_purchase[new] = last
        self.sat_ref[new] = st.satisfaction[seg]
        self.sat_at[new] = st.satisfaction[seg]
        self.t_sat[new] = 0.0
        self.lam_mult[new] = 1.0
        self.birthday[new] = np.floor(streams.uniform("birthday", ids, 0) * 365).astype(np.int64) + 1
        self.cat_cum[new] = np.cumsum(base.tastes, axis=1)
        counts = h.category_counts
        self.cat_n[new] = counts.astype(np.float32)
        total = counts.sum(axis=1, keepdims=True)
        # the log gives spend per customer, not per category: it is split by the category counts
        self.cat_spend[new] = np.divide(counts * h.revenue[:, None], total, out=np.zeros_like(counts), where=total > 0)
        return ids

    # ------------------------------------------------------------------ derived facts
    def preferences(self, idx: np.ndarray) -> np.ndarray:
        """Each customer's category preference weights (rows sum to 1)."""
        cum = self.cat_cum[idx]
        return np.diff(cum, axis=1, prepend=0.0)

    def favourite(self, idx: np.ndarray) -> np.ndarray:
        """The category each customer has bought most (their strongest taste before any purchase)."""
        score = self.cat_n[idx] + 1e-3 * self.preferences(idx)
        return np.argmax(score, axis=1)

    def least(self, idx: np.ndarray) -> np.ndarray:
        """The category each customer has bought least (the weakest taste breaking ties)."""
        score = self.cat_n[idx] + 1e-3 * self.preferences(idx)
        return np.argmin(score, axis=1)


def _declared_columns(cls: type) -> dict[str, Column]:
    """The columns a class declares: its attributes annotated with a Column, in declaration order."""
    hints = get_type_hints(cls, include_extras=True)
    return {name: meta for name, hint in hints.items()
            for meta in getattr(hint, "__metadata__", ()) if isinstance(meta, Column)}


Customers.COLUMNS = _declared_columns(Customers)
#: The row groups' columns, by group, in declaration order.
ROW_GROUPS: dict[str, tuple[str, ...]] = {
    group: tuple(name for name, col in Customers.COLUMNS.items() if col.row_group == group)
    for group in dict.fromkeys(col.row_group for col in Customers.COLUMNS.values() if col.row_group)}


def _record_type(group: str) -> np.dtype:
    """The record of one customer's columns in a row group (each field aligned to its size), checked to sit within
    a cache line."""
    names = ROW_GROUPS[group]
    for name in names:
        if Customers.COLUMNS[name].per_category:
            raise TypeError(f"customer column {name!r}: a per-category column cannot join a row group (it is a row "
                            f"of its own already); remove its row_group")
    record = np.dtype([(name, Customers.COLUMNS[name].dtype) for name in names], align=True)
    if record.itemsize > CACHE_LINE or CACHE_LINE % record.itemsize:
        raise TypeError(f"row group {group!r}: a customer's record is {record.itemsize} bytes, which does not divide "
                        f"the {CACHE_LINE}-byte cache line; move a column out of the group or into another")
    return record


_RECORDS = {group: _record_type(group) for group in ROW_GROUPS}

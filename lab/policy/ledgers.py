"""Ledger mechanics for a whole population at once: points lots and credit lines.

Points are held in lots on a calendar shared by every customer: lot L holds
what was earned in days [L*w, (L+1)*w) where w = lot_days. Because the
calendar is shared, "oldest first" is the same column order for everyone,
and first-in first-out redemption is a cumulative sum along one axis. A lot
matures `pending_days` after its window closes and expires at the first lot
boundary at least `expiry_days` after its window closes, so points live
between expiry_days and expiry_days + lot_days (lot_days = 1 is day-exact).

Every point that enters a ledger leaves it in exactly one way (redeemed,
deducted, expired) or is still outstanding; the per-customer counters make
that identity checkable. Each book declares its columns (lab.policy.columns),
with their place in that identity, so the identity and `grow` follow from the
declaration.
"""

from __future__ import annotations

import math

import numpy as np

from lab.policy.columns import Column, WorldRows, allocate, grow
from lab.policy.model import CreditLine, PointsLedger


def _whole_entries(a: np.ndarray) -> np.ndarray:
    """Whether each value is a whole number small enough for sums of them to be exact."""
    return (np.floor(a) == a) & (np.abs(a) < 2.0**50)


def _whole_numbers(a: np.ndarray) -> bool:
    """Whether every value is a whole number small enough for sums of them to be exact."""
    return bool(np.all(_whole_entries(a)))


def _strictly_increasing(idx: np.ndarray) -> bool:
    idx = np.asarray(idx)
    return idx.ndim == 1 and bool(np.all(idx[1:] > idx[:-1]))


class PointsBook:
    """One points currency for every customer: lots, maturity, FIFO redemption, expiry."""

    COLUMNS: tuple[Column, ...] = (
        Column("lots", np.float64, "points held in each lot of the shared calendar (column = lot mod k)", "points",
               width="k", flow="balance"),
        Column("earned", np.float64, "points ever earned", "points", flow="in"),
        Column("redeemed", np.float64, "points ever exchanged for rewards", "points", flow="out"),
        Column("deducted", np.float64, "points ever removed by deduct actions", "points", flow="out"),
        Column("expired", np.float64, "points ever lost to expiry", "points", flow="out"),
        Column("held", np.float64, "running total of the lots (the balance while every point is whole and mature)",
               "points"),
    )
    lots: np.ndarray
    earned: np.ndarray
    redeemed: np.ndarray
    deducted: np.ndarray
    expired: np.ndarray
    held: np.ndarray

    def __init__(self, spec: PointsLedger, capacity: int) -> None:
        self.spec = spec
        self.w = spec.lot_days
        life = (spec.expiry_days if spec.expiry_days is not None else 0) + spec.pending_days
        self.k = max(2, math.ceil(life / self.w) + 2)
        allocate(self, self.COLUMNS, capacity)
        self.flows = {"earned": 0.0, "redeemed": 0.0, "deducted": 0.0, "expired": 0.0}  # totals over all customers
        self.current_lot = 0
        self._swept_to = 0  # lots with index < this have been expired or are unexpirable
        self._mature_memo: tuple[tuple[int, float], np.ndarray] | None = None
        # While every point is a whole number in a lot already mature, the redeemable balance is the
        # exact sum of a customer's lots in any order, so a running total gives the same bits as
        # summing the row -- without reading the row. Any other use switches this off for good.
        self._whole = spec.pending_days == 0
        self._touched = np.zeros(self.k, dtype=bool)  # columns that may hold points (so an empty one is never scanned)
        # over a stack of worlds: each world's own book (its totals and flags; its columns are views of these)
        self.stack: WorldRows | None = None

    def grow(self, capacity: int) -> None:
        """Make room for more customers (new ones start with nothing)."""
        grow(self, self.COLUMNS, capacity)

    # -- calendar
    def _lot_of(self, day: float) -> int:
        return int(day // self.w)

    def _columns_oldest_first(self) -> np.ndarray:
        L = self.current_lot
        return np.array([(L - self.k + 1 + j) % self.k for j in range(self.k)], dtype=np.intp)

    def _mature_columns(self, day: float) -> np.ndarray:
        """Columns (oldest first) whose points may be redeemed on `day` (asked several times per batch: remembered)."""
        if self.stack is not None:  # the calendar is every world's: theirs move it
            self.current_lot = self.stack.worlds[0].current_lot
        key = (self.current_lot, float(day) if self.spec.pending_days else 0.0)
        if self._mature_memo is not None and self._mature_memo[0] == key:
            return self._mature_memo[1]
        L = self.current_lot
        cols = []
        for j in range(self.k):
            lot = L - self.k + 1 + j
            if lot < 0:
                continue
            if (lot + 1) * self.w + self.spec.pending_days <= day or self.spec.pending_days == 0:
                cols.append(lot % self.k)
        out = np.array(cols, dtype=np.intp)
        out.flags.writeable = False
        self._mature_memo = (key, out)
        return out

    def advance(self, day: float) -> tuple[np.ndarray, np.ndarray]:
        """Move the calendar to `day`, expiring lots whose time has come.

        Returns the customers who lost points and how many each lost."""
        hit: list[np.ndarray] = []
        lost: list[np.ndarray] = []
        target = self._lot_of(day)
        E = self.spec.expiry_days
        if E is not None:
            # lot `lot` expires at the first boundary >= (lot+1)*w + E
            while True:
                lot = self._swept_to
                expiry_day = math.ceil(((lot + 1) * self.w + E) / self.w) * self.w
                if expiry_day > day or lot > target:
                    break
                column = self.lots[:, lot % self.k]
                who = np.flatnonzero(column)
                if who.size:
                    amt = column[who]
                    column[who] = 0.0
                    self.expired[who] += amt
                    self.held[who] -= amt
                    self.flows["expired"] += float(amt.sum())
                    hit.append(who)
                    lost.append(amt)
                self._touched[lot % self.k] = False
                self._swept_to += 1
        while self.current_lot < target:
            self.current_lot += 1
            col = self.current_lot % self.k
            # the slot being reused must be empty: expired, or never expiring (merge forward)
            stale = self.lots[:, col]
            if self._touched[col] and stale.any():
                prev = (self.current_lot - 1) % self.k
                # non-expiring points: fold the oldest slot into its successor to keep FIFO order
                nxt = (self.current_lot + 1) % self.k
                into = nxt if nxt != col else prev
                self.lots[:, into] += stale
                self._touched[into] = True
                self.lots[:, col] = 0.0
            self._touched[col] = False
        if not hit:
            return np.zeros(0, dtype=np.intp), np.zeros(0)
        who, amt = np.concatenate(hit), np.concatenate(lost)
        order = np.argsort(who, kind="stable")
        who, amt = who[order], amt[order]
        uniq, start = np.unique(who, return_index=True)
        return uniq, np.add.reduceat(amt, start)

    @property
    def outstanding(self) -> float:
        """Points outstanding over all customers (earned less everything that left)."""
        f = self.flows
        return f["earned"] - f["redeemed"] - f["deducted"] - f["expired"]

    # -- balances
    def balance(self, idx: np.ndarray, day: float) -> np.ndarray:
        """Points that can be redeemed now."""
        if self._whole if self.stack is None else all(self.stack.worlds[w]._whole for w, _, _ in self.stack.parts(idx)):
            return np.array(self.held[idx], dtype=np.float64)
        # (a world whose points are all whole gets the same bits from its lots: whole numbers add exactly)
        cols = self._mature_columns(day)
        if cols.size == 0:
            return np.zeros(len(idx))
        return self.lots[idx][:, cols].sum(axis=1)  # whole rows first: far cheaper than an np.ix_ gather

    def total(self, idx: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Points outstanding, pending ones included."""
        return self.lots[idx].sum(axis=1)

    def pending(self, idx: np.ndarray, day: float) -> np.ndarray:
        """Points earned but not yet mature."""
        return self.total(idx) - self.balance(idx, day)

    # -- movements
    def award(self, idx: np.ndarray, amount: np.ndarray, day: float) -> None:
        """Add points to the current lot (idx may repeat)."""
        amount = np.maximum(amount, 0.0)
        col = self._lot_of(day) % self.k
        amount = np.broadcast_to(amount, np.shape(idx))
        parts = None if self.stack is None else self.stack.parts(idx)
        if parts is None:
            self._touched[col] = True
            if self._whole and (self._lot_of(day) != self.current_lot or not _whole_numbers(amount)):
                self._whole = False
        else:  # each world's book, its part of the batch checked at once
            assert self.stack is not None
            starts = [lo for _, lo, _ in parts]
            wholes = np.logical_and.reduceat(_whole_entries(amount), starts).tolist() if parts else []
            for (w, _, _), all_whole in zip(parts, wholes, strict=True):
                book = self.stack.worlds[w]
                book._touched[col] = True
                if book._whole and (self._lot_of(day) != book.current_lot or not all_whole):
                    book._whole = False
        if _strictly_increasing(idx):  # no customer twice: a plain update is exact and much cheaper than add.at
            lot = self.lots[:, col]  # a column view: indexing it is far cheaper than lots[idx, col]
            lot[idx] += amount
            self.earned[idx] += amount
            self.held[idx] += amount
        else:
            np.add.at(self.lots[:, col], idx, amount)
            np.add.at(self.earned, idx, amount)
            np.add.at(self.held, idx, amount)
        if parts is None:
            self.flows["earned"] += float(amount.sum())
        else:
            from lab.randomness.sums import slice_sums  # (here: `lab validate` reads policies without the engine)

            assert self.stack is not None
            earned = slice_sums(amount[None, :], [(lo, hi) for _, lo, hi in parts])[0].tolist()
            for (w, _, _), e in zip(parts, earned, strict=True):
                self.stack.worlds[w].flows["earned"] += e

    def _books(self, parts: list[tuple[int, int, int]] | None, values: np.ndarray):
        """(book, its entries of `values`): this book and all of them alone; over a stack, each world's own book
        and its part (`parts` of the rows the values belong to)."""
        if parts is None:
            return [(self, values)]
        assert self.stack is not None
        return [(self.stack.worlds[w], values[lo:hi]) for w, lo, hi in parts]

    def take(self, idx: np.ndarray, amount: np.ndarray, day: float, *, how: str) -> np.ndarray:
        """Remove up to `amount` mature points, oldest lots first; returns what was taken.

        `idx` must not repeat; `how` is "redeemed" or "deducted"."""
        cols = self._mature_columns(day)
        if cols.size == 0 or len(idx) == 0:
            return np.zeros(len(idx))
        rows = self.lots[idx]
        sub = rows[:, cols]
        need = np.clip(amount, 0.0, None)
        before = np.cumsum(sub, axis=1) - sub
        taken = np.clip(need[:, None] - before, 0.0, sub)
        rows[:, cols] = sub - taken
        self.lots[idx] = rows
        got = taken.sum(axis=1)
        parts = None if self.stack is None else self.stack.parts(idx)
        for book, t in self._books(parts, taken):
            if book._whole and not _whole_numbers(t):
                book._whole = False
        self.held[idx] -= got
        counter = self.redeemed if how == "redeemed" else self.deducted
        counter[idx] += got
        for book, g in self._books(parts, got):
            book.flows[how] += float(g.sum())
        return got


class CreditBook:
    """One store credit line for every customer: limits, balances, statements, delinquency, write-off.

    Every dollar that enters a line (charged, interest, fees) leaves it repaid or
    written off, or is still owed: charged + interest + fees = repaid + written_off + owed.
    Interest and fees are income only once paid: payments settle fees, then interest,
    then the principal."""

    COLUMNS: tuple[Column, ...] = (
        Column("limit", np.float64, "credit limit (0 on a closed or never opened line)", "dollars"),
        Column("owed", np.float64, "balance owed: principal, interest and fees not yet repaid", "dollars",
               flow="balance"),
        Column("missed", np.int32, "minimum payments missed in a row", "statements"),
        Column("delinquent_since", np.float64, "day the account fell delinquent (NaN when it is not)", "day",
               fill=float("nan")),
        Column("closed", np.bool_, "the line was written off and closed for good"),
        Column("charged", np.float64, "purchases ever put on the line", "dollars", flow="in"),
        Column("repaid", np.float64, "payments ever made", "dollars", flow="out"),
        Column("interest", np.float64, "interest ever charged", "dollars", flow="in"),
        Column("fees", np.float64, "late fees ever charged", "dollars", flow="in"),
        Column("written_off", np.float64, "balances ever written off as bad debt (with their unpaid interest and fees)",
               "dollars", flow="out"),
        Column("unpaid_fees", np.float64, "fees charged and not yet paid", "dollars"),
        Column("unpaid_interest", np.float64, "interest charged and not yet paid", "dollars"),
        Column("collected_fees", np.float64, "fees paid: the store's fee income", "dollars"),
        Column("collected_interest", np.float64, "interest paid: the store's interest income", "dollars"),
    )
    limit: np.ndarray
    owed: np.ndarray
    missed: np.ndarray
    delinquent_since: np.ndarray
    closed: np.ndarray
    charged: np.ndarray
    repaid: np.ndarray
    interest: np.ndarray
    fees: np.ndarray
    written_off: np.ndarray
    unpaid_fees: np.ndarray
    unpaid_interest: np.ndarray
    collected_fees: np.ndarray
    collected_interest: np.ndarray

    def __init__(self, spec: CreditLine, capacity: int) -> None:
        self.spec = spec
        allocate(self, self.COLUMNS, capacity)
        self.owed_total = 0.0
        self.stack: WorldRows | None = None  # over a stack of worlds: each world's own book (see PointsBook.stack)

    def grow(self, capacity: int) -> None:
        """Make room for more customers."""
        grow(self, self.COLUMNS, capacity)

    def open(self, idx: np.ndarray) -> None:
        """Grant the line's starting limit to newly enrolled members."""
        if self.spec.limit > 0:
            self.limit[idx] = np.where(self.closed[idx], 0.0, np.maximum(self.limit[idx], self.spec.limit))

    def available(self, idx: np.ndarray) -> np.ndarray:
        """Credit that can still be drawn (none while delinquent or closed)."""
        ok = ~self.closed[idx] & np.isnan(self.delinquent_since[idx])
        return np.where(ok, np.maximum(self.limit[idx] - self.owed[idx], 0.0), 0.0)

    def charge(self, idx: np.ndarray, amount: np.ndarray) -> np.ndarray:
        """Put up to `amount` on credit, never above the limit; returns what was charged."""
        got = np.minimum(np.maximum(amount, 0.0), self.available(idx))
        self.owed[idx] += got
        self.charged[idx] += got
        if self.stack is None:
            self.owed_total += float(got.sum())
        else:
            for w, lo, hi in self.stack.parts(idx):
                self.stack.worlds[w].owed_total += float(got[lo:hi].sum())
        return got

    def raise_limit(self, idx: np.ndarray, new_limit: np.ndarray, raise_by: np.ndarray) -> None:
        """Open or raise lines (never lowers a limit; closed lines stay closed)."""
        lim = np.maximum(self.limit[idx], np.maximum(new_limit, 0.0)) + np.maximum(raise_by, 0.0)
        self.limit[idx] = np.where(self.closed[idx], self.limit[idx], lim)

    def due(self) -> tuple[np.ndarray, np.ndarray]:
        """Customers with a balance on statement day, and the minimum each must pay."""
        idx = np.flatnonzero(self.owed > 0)
        owed = self.owed[idx]
        minimum = np.minimum(owed, np.maximum(self.spec.min_payment, owed * self.spec.min_payment_percent))
        return idx, minimum

    def settle(self, idx: np.ndarray, paid: np.ndarray, minimum: np.ndarray,
               day: float) -> tuple[np.ndarray, np.ndarray]:
        """Apply a statement's payments: interest on what is carried, fees, delinquency, write-offs.

        Returns (customers written off, principal written off: the store's bad debt; unpaid interest
        and fees written off with it were never income)."""
        spec = self.spec
        paid = np.clip(paid, 0.0, self.owed[idx])
        self.owed[idx] -= paid
        self.repaid[idx] += paid
        to_fees = np.minimum(paid, self.unpaid_fees[idx])
        to_interest = np.minimum(paid - to_fees, self.unpaid_interest[idx])
        self.unpaid_fees[idx] -= to_fees
        self.unpaid_interest[idx] -= to_interest
        self.collected_fees[idx] += to_fees
        self.collected_interest[idx] += to_interest
        ok = paid + 1e-9 >= minimum
        carried = self.owed[idx]
        interest = carried * spec.apr * spec.statement_days / 365.0
        self.owed[idx] += interest
        self.interest[idx] += interest
        self.unpaid_interest[idx] += interest
        self.missed[idx] = np.where(ok, 0, self.missed[idx] + 1)
        late = idx[~ok]
        if spec.late_fee > 0 and late.size:
            self.owed[late] += spec.late_fee
            self.fees[late] += spec.late_fee
            self.unpaid_fees[late] += spec.late_fee
        cured = idx[ok]
        self.delinquent_since[cured] = np.nan
        newly = late[(self.missed[late] >= spec.delinquent_after_missed) & np.isnan(self.delinquent_since[late])]
        self.delinquent_since[newly] = day
        over = idx[(day - self.delinquent_since[idx]) >= spec.write_off_after_days]
        amounts = self.owed[over].copy()
        principal = amounts - self.unpaid_fees[over] - self.unpaid_interest[over]
        self.written_off[over] += amounts
        self.unpaid_fees[over] = 0.0
        self.unpaid_interest[over] = 0.0
        self.owed[over] = 0.0
        self.owed_total = float(self.owed.sum())
        self.limit[over] = 0.0
        self.closed[over] = True
        self.delinquent_since[over] = np.nan
        return over, principal

    def days_delinquent(self, idx: np.ndarray, day: float) -> np.ndarray:
        """Days since the account fell delinquent (0 when it is not)."""
        d = day - self.delinquent_since[idx]
        return np.where(np.isnan(d), 0.0, d)

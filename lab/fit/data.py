"""Reading a transaction log and summarising it per customer for the buy-till-you-die models.

A log is a CSV or Parquet file with one row per purchase: a customer id, a date (ISO form such as
2024-03-31 or 2024-03-31T10:15, or YYYYMMDD) or a number of days (as `lab run --transactions`
writes), an amount, and optionally a category and a segment. Column names are guessed from common
spellings unless given.

As is standard in this literature (Fader, Hardie & Lee 2005), several purchases by one customer on
one day count as one transaction whose amount is their sum. Each customer's clock starts at their
first transaction: x is the number of repeat transactions (after the first) up to the end of the
calibration period, t_x the time from the first to the last of them and T the time from the first
to the end of calibration, counted in whole days (the lifetimes convention) and then expressed in
the chosen time unit.

Every problem with the rows is either an error (:class:`lab.errors.LabError`) or a warning, both
naming the file, the line (for Parquet: the row) and the column, and saying what was done with
the rows. Everything here works on whole columns (pandas groupby, numpy bincount).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from lab.errors import Diagnostic, LabError, printable, suggest

__all__ = ["COLUMN_GUESSES", "LogSummary", "read_log", "summarise", "file_sha256", "parse_date"]

#: Column names tried, in order, when a column is not named on the command line.
COLUMN_GUESSES: dict[str, tuple[str, ...]] = {
    "customer": ("customer_id", "customer", "cust_id", "customerid", "client_id", "client", "user_id", "member_id",
                 "id"),
    "time": ("time", "date", "timestamp", "datetime", "order_date", "purchase_date", "transaction_date", "day"),
    "amount": ("amount", "spend", "sales", "revenue", "value", "total", "price", "monetary"),
    "category": ("category", "product_category", "department"),
    "segment": (),  # only when named: --segment changes what is fitted
}
TIME_UNIT_DAYS = {"days": 1.0, "weeks": 7.0}
#: How many offending lines a message quotes.
QUOTE = 3


@dataclass
class LogSummary:
    """A transaction log reduced to what the models need, with what was done on the way."""

    file: str
    sha256: str
    time_unit: str
    rows: int                       # data rows in the file
    rows_used: int                  # rows that became part of a transaction
    transactions: int               # customer-days in the calibration period
    merged_rows: int                # rows folded into another purchase of the same customer on the same day
    dates: bool                     # True: the time column held dates; False: numbers of days
    start_day: int                  # first day in the calibration period
    calibration_end_day: int
    holdout_end_day: int | None
    last_day: int                   # the log's last purchase day, whatever --until says
    customers: pd.DataFrame         # one row per customer in calibration (see `summarise`)
    daily_repeat: np.ndarray        # actual repeat transactions on each day from start_day to the last day used
    categories: pd.DataFrame        # category, rows, share, mean_price (empty without a category column)
    columns: dict[str, str | None]
    warnings: list[Diagnostic] = field(default_factory=list)

    @property
    def unit_days(self) -> float:
        return TIME_UNIT_DAYS[self.time_unit]

    def day_label(self, day: int | None) -> str | None:
        """A day number as the user wrote it: an ISO date, or a number of days."""
        if day is None:
            return None
        if self.dates:
            return str(np.datetime64(int(day), "D"))
        return str(int(day))

    @property
    def holdout_length(self) -> float:
        """Length of the holdout period in the time unit (0 without a holdout)."""
        if self.holdout_end_day is None:
            return 0.0
        return (self.holdout_end_day - self.calibration_end_day) / self.unit_days


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------- reading
def read_log(path: str | Path) -> pd.DataFrame:
    """The raw table of a CSV or Parquet log (by extension: .parquet/.pq, otherwise CSV)."""
    p = Path(path)
    file = str(path)
    if not p.is_file():
        raise LabError.at(file, 1, 1, "cannot read the transaction log: no such file")
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(p)
        return pd.read_csv(p, skip_blank_lines=False, low_memory=False)
    except pd.errors.EmptyDataError:
        raise LabError.at(file, 1, 1, "the transaction log is empty: it needs a header line (customer, date and "
                          "amount columns) and a row per purchase") from None
    except (OSError, ValueError, pd.errors.ParserError, UnicodeDecodeError) as e:
        ragged = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(e))
        if ragged is not None:
            want, line, got = (int(g) for g in ragged.groups())
            raise LabError.at(file, line, 1, f"line {line} has {got} fields, the header {want}: a value holding a "
                              "comma needs quotes around it, or the line has a field too many") from None
        raise LabError.at(file, 1, 1, "cannot read the transaction log: "
                          f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


def _is_parquet(file: str) -> bool:
    return Path(file).suffix.lower() in (".parquet", ".pq")


def _line(file: str, row: int) -> int:
    """The 1-based line of data row ``row`` (0-based): CSV rows start on line 2 after the header; Parquet rows count
    from 1."""
    return row + 1 if _is_parquet(file) else row + 2


def _where(file: str) -> str:
    return "row" if _is_parquet(file) else "line"


def _quote_rows(file: str, rows: np.ndarray) -> str:
    first = ", ".join(str(_line(file, int(r))) for r in rows[:QUOTE])
    more = f" and {len(rows) - QUOTE:,} more" if len(rows) > QUOTE else ""
    return f"{_where(file)}{'s' if len(rows) > 1 else ''} {first}{more}"


def _pick_columns(frame: pd.DataFrame, file: str, named: dict[str, str | None]) -> dict[str, str | None]:
    """Resolve each role (customer, time, amount, category, segment) to a column of the file."""
    cols = [str(c) for c in frame.columns]
    lower = {c.lower(): c for c in cols}
    out: dict[str, str | None] = {}
    for role, guesses in COLUMN_GUESSES.items():
        given = named.get(role)
        if given is not None:
            if given not in cols:
                raise LabError.at(file, 1, 1, f"no column '{given}' (given with --{role}) in the transaction log"
                                  + suggest(given, cols))
            out[role] = given
            continue
        found = next((lower[g] for g in guesses if g in lower), None)
        if found is None and role in ("customer", "time", "amount"):
            one = cols[0] if len(cols) == 1 else ""
            sep = next((c for c in ";\t|" if c in one), None)  # a whole header in one column: another separator
            hint = (f"; the header is one column holding '{printable(sep)}': the log must be comma-separated (save it "
                    "as CSV with commas)") if sep else f"; name it with --{role} COL" + suggest(role, cols,
                                                                                                list_all=False)
            raise LabError.at(file, 1, 1, f"no {role} column: none of {', '.join(guesses[:5])}, ... is in the header "
                              f"({', '.join(cols[:8])}{', ...' if len(cols) > 8 else ''}){hint}")
        out[role] = found
    return out


def parse_date(text: str, dates: bool, what: str) -> int:
    """A --until/--holdout-until value as a day number (days since 1970-01-01, or a number of days)."""
    s = str(text).strip()
    if not dates:
        try:
            v = float(s)
        except ValueError:
            raise LabError.at("<command line>", 1, 1, f"{what} must be a number of days here (the log's time column "
                              f"holds numbers), got '{s}'") from None
        if not np.isfinite(v):
            raise LabError.at("<command line>", 1, 1, f"{what} must be a finite number of days, got '{s}'")
        return int(np.floor(v))
    fmt = "%Y%m%d" if s.isdigit() and len(s) == 8 else "ISO8601"
    try:
        ts = pd.to_datetime(s, format=fmt)
    except (ValueError, TypeError):
        raise LabError.at("<command line>", 1, 1,
                          f"{what} must be a date such as 2024-12-31 or 20241231, got '{s}'") from None
    return int(np.datetime64(ts.to_datetime64(), "D").astype(np.int64))


def _days(frame: pd.DataFrame, col: str, file: str, colno: int) -> tuple[np.ndarray, bool]:
    """The time column as whole day numbers, and whether it held dates."""
    s = frame[col]
    bad_msg = ("cannot read the {n} value{s} in column '{col}' ({where}) as a date (ISO form such as 2024-03-31, "
               "or YYYYMMDD) or a number of days; fix or remove {these} rows")
    if pd.api.types.is_datetime64_any_dtype(s):
        vals = s.to_numpy(dtype="datetime64[ns]")
        bad = np.flatnonzero(np.isnat(vals))
        if bad.size:
            raise LabError.at(file, _line(file, bad[0]), colno,
                              f"{bad.size:,} missing date{'s' if bad.size > 1 else ''} in column '{col}' "
                              f"({_quote_rows(file, bad)}); fix or remove those rows")
        return vals.astype("datetime64[D]").astype(np.int64), True
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        v = s.to_numpy(dtype=float, na_value=np.nan)
        bad = np.flatnonzero(~np.isfinite(v))
        if bad.size:
            raise LabError.at(file, _line(file, bad[0]), colno,
                              bad_msg.format(n=f"{bad.size:,} missing or non-finite", s="s" if bad.size > 1 else "",
                                             col=col, where=_quote_rows(file, bad), these="those"))
        whole = np.all(v == np.floor(v))
        if whole and v.size and v.min() >= 19000101 and v.max() <= 21001231:
            return _parse_strings(pd.Series(v.astype(np.int64).astype(str)), "%Y%m%d", file, col, colno), True
        return np.floor(v).astype(np.int64), False
    text = s.astype("string").str.strip()
    sample = text.dropna()
    first = str(sample.iloc[0]) if len(sample) else ""
    fmt = "%Y%m%d" if first.isdigit() and len(first) == 8 else "ISO8601"
    return _parse_strings(text, fmt, file, col, colno), True


def _parse_strings(text: pd.Series, fmt: str, file: str, col: str, colno: int) -> np.ndarray:
    parsed = pd.to_datetime(text, format=fmt, errors="coerce")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    vals = parsed.to_numpy(dtype="datetime64[ns]")
    bad = np.flatnonzero(np.isnat(vals))
    if bad.size:
        shown = text.iloc[bad[0]]
        raise LabError.at(file, _line(file, bad[0]), colno,
                          f"cannot read {'' if pd.isna(shown) else repr(str(shown)) + ' and '}{bad.size:,} "
                          f"value{'s' if bad.size > 1 else ''} in column "
                          f"'{col}' ({_quote_rows(file, bad)}) as "
                          f"{'YYYYMMDD dates' if fmt == '%Y%m%d' else 'ISO dates such as 2024-03-31'}; "
                          "every row needs a date in one format: fix or remove those rows")
    return vals.astype("datetime64[D]").astype(np.int64)


def _amounts(frame: pd.DataFrame, col: str, file: str, colno: int) -> np.ndarray:
    s = frame[col]
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        v = s.to_numpy(dtype=float, na_value=np.nan)
    else:
        v = pd.to_numeric(s.astype("string").str.strip().str.replace(r"^\$|,", "", regex=True),
                          errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = np.flatnonzero(~np.isfinite(v))
    if bad.size:
        shown = s.iloc[bad[0]]
        raise LabError.at(file, _line(file, bad[0]), colno,
                          f"cannot read {'a missing value' if pd.isna(shown) else repr(str(shown))} in column '{col}' "
                          "as an amount; "
                          f"{bad.size:,} row{'s' if bad.size > 1 else ''} like it ({_quote_rows(file, bad)}): "
                          "fix or remove them")
    return v


# --------------------------------------------------------------------------- summarising
def summarise(path: str | Path, *, columns: dict[str, str | None] | None = None, until: str | None = None,
              holdout_until: str | None = None, time_unit: str = "weeks",
              frame: pd.DataFrame | None = None) -> LogSummary:
    """Read ``path`` (or use ``frame`` read from it) and reduce it to one row per customer.

    The ``customers`` frame has, per customer with a transaction in the calibration period:
    ``customer`` (the id as in the file), ``first_day``, ``x``, ``t_x``, ``T`` (in ``time_unit``),
    ``first_amount``, ``revenue`` (calibration), ``mean_repeat_spend`` (mean amount of the repeat
    transactions; NaN when x == 0), ``x_holdout`` (transactions in the holdout), ``segment``
    (when a segment column is used) and one ``n_<category>`` count of rows per category.
    """
    file = str(path)
    if time_unit not in TIME_UNIT_DAYS:
        raise LabError.at("<command line>", 1, 1, f"--time-unit must be days or weeks, got '{time_unit}'")
    raw = read_log(path) if frame is None else frame
    warnings: list[Diagnostic] = []
    cols = _pick_columns(raw, file, columns or {})
    colno = {c: i + 1 for i, c in enumerate(str(c) for c in raw.columns)}
    n_rows = len(raw)
    if n_rows == 0:
        raise LabError.at(file, 1, 1, "the transaction log has a header but no rows")

    cust_col, time_col, amt_col = cols["customer"], cols["time"], cols["amount"]
    assert cust_col is not None and time_col is not None and amt_col is not None
    cust = raw[cust_col]
    missing = np.flatnonzero(cust.isna().to_numpy())
    if missing.size:
        raise LabError.at(file, _line(file, missing[0]), colno[cust_col],
                          f"{missing.size:,} row{'s' if missing.size > 1 else ''} with no customer id in column "
                          f"'{cust_col}' "
                          f"({_quote_rows(file, missing)}): fix or remove them")
    day, dates = _days(raw, time_col, file, colno[time_col])
    amount = _amounts(raw, amt_col, file, colno[amt_col])

    used_cols = [c for c in cols.values() if c is not None]
    dup = raw.duplicated(subset=used_cols, keep="first").to_numpy()
    keep = ~dup
    if dup.any():
        rows = np.flatnonzero(dup)
        warnings.append(Diagnostic(file, _line(file, rows[0]), 1,
                                   f"warning: {rows.size:,} row{'s' if rows.size > 1 else ''} exactly repeat an "
                                   "earlier row in columns "
                                   f"{', '.join(used_cols)} ({_quote_rows(file, rows)}); left out as duplicates "
                                   "(the first copy is kept)"))
    neg = (amount < 0) & keep
    if neg.any():
        rows = np.flatnonzero(neg)
        warnings.append(Diagnostic(file, _line(file, rows[0]), colno[amt_col],
                                   f"warning: {rows.size:,} negative amount{'s' if rows.size > 1 else ''} in column "
                                   f"'{amt_col}' "
                                   f"({_quote_rows(file, rows)}) read as returns and left out: they count neither as "
                                   "transactions nor as spend"))
        keep &= ~neg

    if not keep.any():
        left = [f"{n:,} {what}" for n, what in ((int(neg.sum()), "negative amounts read as returns"),
                                                 (int(dup.sum()), "rows repeating an earlier row")) if n]
        raise LabError.at(file, _line(file, 0), colno[amt_col],
                          f"no purchase is left to fit: every row was left out ({' and '.join(left)}); a transaction "
                          f"log needs purchases with positive amounts in column '{amt_col}'")
    first_day_all = int(day[keep].min())
    last_day_all = int(day[keep].max())
    cal_end = parse_date(until, dates, "--until") if until is not None else last_day_all
    hold_end = parse_date(holdout_until, dates, "--holdout-until") if holdout_until is not None else None
    if hold_end is not None and hold_end <= cal_end:
        raise LabError.at("<command line>", 1, 1, f"--holdout-until ({holdout_until}) must come after the end of "
                          "calibration "
                          f"({until if until is not None else 'the last date in the log'})")
    in_cal = keep & (day <= cal_end)
    if not in_cal.any():
        first_row = int(np.flatnonzero(keep)[np.argmin(day[keep])])
        raise LabError.at(file, _line(file, first_row), colno[time_col],
                          f"the calibration period is empty: no purchase on or before --until {until} "
                          f"(the first purchase in column '{time_col}' is on {_label(first_day_all, dates)}); "
                          "give a later --until")
    last_used = hold_end if hold_end is not None else cal_end
    late = keep & (day > last_used)
    if late.any():
        rows = np.flatnonzero(late)
        opt = "--holdout-until" if hold_end is not None else "--until"
        hint = "" if hold_end is not None else " (give --holdout-until to use them as a holdout)"
        warnings.append(Diagnostic(file, _line(file, rows[0]), colno[time_col],
                                   f"warning: {rows.size:,} row{'s' if rows.size > 1 else ''} after {opt} "
                                   f"{_label(last_used, dates)} "
                                   f"({_quote_rows(file, rows)}) left out{hint}"))
        keep &= ~late

    codes, uniques = pd.factorize(cust, sort=False)
    codes = codes.astype(np.int64)
    n_all = len(uniques)
    # customers whose first purchase comes after the calibration period cannot be fitted
    cal_count = np.bincount(codes[in_cal], minlength=n_all)
    has_rows = np.bincount(codes[keep], minlength=n_all) > 0
    only_after = has_rows & (cal_count == 0)
    if only_after.any():
        rows = np.flatnonzero(keep & only_after[codes])
        warnings.append(Diagnostic(file, _line(file, rows[0]), colno[cust_col],
                                   f"warning: {int(only_after.sum()):,} customer{'s' if only_after.sum() > 1 else ''} "
                                   "first bought after "
                                   f"the calibration end {_label(cal_end, dates)} ({rows.size:,} rows, "
                                   f"{_quote_rows(file, rows)}); "
                                   "left out of the fit and of the holdout (the models describe customers already "
                                   "acquired)"))
        keep &= ~only_after[codes]

    # one transaction per customer and day: sum the amounts
    idx = np.flatnonzero(keep)
    c_k, d_k, a_k = codes[idx], day[idx], amount[idx]
    span = int(d_k.max() - d_k.min() + 1)
    key = c_k * span + (d_k - d_k.min())
    order = np.argsort(key, kind="stable")
    key_s = key[order]
    starts = np.flatnonzero(np.r_[True, key_s[1:] != key_s[:-1]])
    t_cust = c_k[order][starts]
    t_day = d_k[order][starts]
    t_amount = np.add.reduceat(a_k[order], starts) if starts.size else np.zeros(0)
    merged = int(idx.size - starts.size)

    # per customer, over calibration transactions (sorted by customer then day)
    cal_t = t_day <= cal_end
    cc, cd, ca = t_cust[cal_t], t_day[cal_t], t_amount[cal_t]
    first_pos = np.flatnonzero(np.r_[True, cc[1:] != cc[:-1]])
    ids = cc[first_pos]
    n_tx = np.diff(np.r_[first_pos, cc.size])
    first_day = cd[first_pos]
    last_day = cd[first_pos + n_tx - 1]
    first_amount = ca[first_pos]
    revenue = np.add.reduceat(ca, first_pos)
    unit = TIME_UNIT_DAYS[time_unit]
    x = (n_tx - 1).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_repeat = np.where(x > 0, (revenue - first_amount) / np.where(x > 0, x, 1.0), np.nan)
    pos_of = np.full(n_all, -1, dtype=np.int64)
    pos_of[ids] = np.arange(ids.size)
    hold_t = ~cal_t
    x_hold = np.bincount(pos_of[t_cust[hold_t]], minlength=ids.size).astype(float)
    table = pd.DataFrame({
        "customer": np.asarray(pd.Index(uniques).take(ids)),
        "first_day": first_day,
        "x": x,
        "t_x": (last_day - first_day) / unit,
        "T": (cal_end - first_day) / unit,
        "first_amount": first_amount,
        "revenue": revenue,
        "mean_repeat_spend": mean_repeat,
        "x_holdout": x_hold,
    })

    rows_cal = idx[day[idx] <= cal_end]
    categories = pd.DataFrame(columns=["category", "rows", "share", "mean_price"])
    cat_col = cols.get("category")
    if cat_col is not None:
        cat_codes, cat_names = pd.factorize(raw[cat_col].iloc[rows_cal], sort=True)
        if (cat_codes < 0).any():
            miss = rows_cal[cat_codes < 0]
            warnings.append(Diagnostic(file, _line(file, miss[0]), colno[cat_col],
                                       f"warning: {miss.size:,} row{'s' if miss.size > 1 else ''} with no category "
                                       f"in column '{cat_col}' "
                                       f"({_quote_rows(file, miss)}): counted as transactions, left out of the "
                                       "category mix"))
        ok = cat_codes >= 0
        k = len(cat_names)
        counts = np.bincount(cat_codes[ok], minlength=k)
        price_sum = np.bincount(cat_codes[ok], weights=amount[rows_cal][ok], minlength=k)
        categories = pd.DataFrame({"category": [str(c) for c in cat_names], "rows": counts,
                                   "share": counts / max(counts.sum(), 1),
                                   "mean_price": price_sum / np.maximum(counts, 1)})
        per = np.bincount(pos_of[codes[rows_cal][ok]] * k + cat_codes[ok], minlength=ids.size * k).reshape(ids.size, k)
        for j, name in enumerate(categories["category"]):
            table[f"n_{name}"] = per[:, j]
    seg_col = cols.get("segment")
    if seg_col is not None:
        seg_vals = raw[seg_col].iloc[rows_cal]
        seg_first = (pd.Series(seg_vals.to_numpy(), index=pos_of[codes[rows_cal]])
                     .groupby(level=0).agg(["first", "nunique"]))
        if seg_first["first"].isna().any():
            bad_pos = seg_first.index[seg_first["first"].isna()].to_numpy()
            bad_rows = rows_cal[np.isin(pos_of[codes[rows_cal]], bad_pos)]
            raise LabError.at(file, _line(file, bad_rows[0]), colno[seg_col],
                              f"{bad_pos.size:,} customer{'s' if bad_pos.size > 1 else ''} with no segment in "
                              f"column '{seg_col}' "
                              f"({_quote_rows(file, bad_rows)}): give every customer a segment or drop --segment")
        multi = seg_first["nunique"].to_numpy() > 1
        if multi.any():
            bad_pos = seg_first.index[multi].to_numpy()
            bad_rows = rows_cal[np.isin(pos_of[codes[rows_cal]], bad_pos)]
            warnings.append(Diagnostic(file, _line(file, bad_rows[0]), colno[seg_col],
                                       f"warning: {bad_pos.size:,} customer{'s' if bad_pos.size > 1 else ''} appear "
                                       "in more than one segment "
                                       f"in column '{seg_col}' ({_quote_rows(file, bad_rows)}); each is fitted in the "
                                       "segment of their first row"))
        table["segment"] = seg_first["first"].reindex(np.arange(ids.size)).astype(str).to_numpy()

    start = int(first_day.min())
    end = last_used
    rep = np.ones(t_cust.size, dtype=bool)
    rep[np.flatnonzero(np.r_[True, t_cust[1:] != t_cust[:-1]])] = False
    daily = np.bincount((t_day[rep] - start).astype(np.int64), minlength=end - start + 1)[: end - start + 1]
    return LogSummary(file=file, sha256=file_sha256(path), time_unit=time_unit, rows=n_rows, rows_used=int(idx.size),
                      transactions=int(cal_t.sum()), merged_rows=merged, dates=dates, start_day=start,
                      calibration_end_day=cal_end, holdout_end_day=hold_end, last_day=last_day_all, customers=table,
                      daily_repeat=daily.astype(float), categories=categories, columns=cols, warnings=warnings)


def _label(day: int, dates: bool) -> str:
    return str(np.datetime64(int(day), "D")) if dates else str(int(day))

"""Reading a transaction log: the per-customer summary, and every kind of bad row named by file, line and column."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from lab.errors import LabError
from lab.fit.data import summarise

GOOD = """customer_id,date,amount,category
a,2024-01-01,10.00,food
a,2024-01-01,5.00,drink
a,2024-01-08,20.00,food
a,2024-01-15,30.00,food
b,2024-01-03,7.50,drink
c,2024-01-10,12.00,food
c,2024-01-24,8.00,food
a,2024-02-05,40.00,food
c,2024-02-07,9.00,drink
"""


def _write(tmp_path, text: str, name: str = "log.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def _error(path, **kw) -> str:
    with pytest.raises(LabError) as e:
        summarise(path, **kw)
    return str(e.value)


def test_summary_counts_days_not_rows_and_uses_the_day_convention(tmp_path) -> None:
    s = summarise(_write(tmp_path, GOOD), until="2024-01-31", holdout_until="2024-02-29", time_unit="days")
    c = s.customers.set_index("customer")
    # a: days 1 (two rows: one transaction of $15), 8, 15 -> x = 2, t_x = 14, T = 30
    assert c.loc["a", ["x", "t_x", "T"]].tolist() == [2.0, 14.0, 30.0]
    assert c.loc["a", "first_amount"] == 15.0 and c.loc["a", "mean_repeat_spend"] == 25.0
    assert c.loc["a", "x_holdout"] == 1.0 and c.loc["c", "x_holdout"] == 1.0
    assert c.loc["b", ["x", "t_x", "T"]].tolist() == [0.0, 0.0, 28.0] and np.isnan(c.loc["b", "mean_repeat_spend"])
    assert c.loc["c", ["x", "t_x", "T"]].tolist() == [1.0, 14.0, 21.0]
    assert s.merged_rows == 1 and s.transactions == 6
    assert c.loc["a", "n_food"] == 3 and c.loc["a", "n_drink"] == 1
    cats = s.categories.set_index("category")
    # mean price of food: (10 + 20 + 30 + 12 + 8) / 5
    assert cats.loc["food", "rows"] == 5 and cats.loc["food", "mean_price"] == pytest.approx(16.0)
    # repeat transactions by day: days 8, 15, 24 in calibration, Feb 5 and 7 in the holdout
    assert s.daily_repeat.sum() == 5 and s.daily_repeat[7] == 1
    weeks = summarise(_write(tmp_path, GOOD), until="2024-01-31", time_unit="weeks").customers.set_index("customer")
    assert weeks.loc["a", "T"] == pytest.approx(30 / 7)


def test_yyyymmdd_and_numeric_days_and_parquet(tmp_path) -> None:
    ymd = GOOD.replace("2024-01-", "202401").replace("2024-02-", "202402")
    a = summarise(_write(tmp_path, ymd, "ymd.csv"), until="20240131").customers
    b = summarise(_write(tmp_path, GOOD), until="2024-01-31").customers
    assert a[["x", "t_x", "T"]].equals(b[["x", "t_x", "T"]])
    frame = pd.read_csv(tmp_path / "log.csv")
    frame["time"] = (pd.to_datetime(frame.pop("date")) - pd.Timestamp("2024-01-01")).dt.days + 0.25
    frame.to_parquet(tmp_path / "log.parquet")
    c = summarise(tmp_path / "log.parquet", until="30").customers
    assert c[["x", "t_x", "T"]].equals(b[["x", "t_x", "T"]])


def test_missing_column_is_named_with_the_header(tmp_path) -> None:
    msg = _error(_write(tmp_path, GOOD.replace("amount", "price_paid")))
    assert re.match(r".*log\.csv:1:1: no amount column", msg) and "--amount" in msg
    msg = _error(_write(tmp_path, GOOD), columns={"customer": "client"})
    assert "no column 'client' (given with --customer)" in msg


def test_unparseable_date_names_line_and_column(tmp_path) -> None:
    text = GOOD.replace("c,2024-01-24", "c,24/01/2024")
    msg = _error(_write(tmp_path, text))
    assert re.search(r"log\.csv:8:2: cannot read '24/01/2024'", msg) and "line 8" in msg


def test_unparseable_amount_names_line_and_column(tmp_path) -> None:
    msg = _error(_write(tmp_path, GOOD.replace("7.50", "seven")))
    assert re.search(r"log\.csv:6:3: cannot read 'seven' in column 'amount'", msg)


def test_negative_amounts_are_returns_left_out_with_a_warning(tmp_path) -> None:
    s = summarise(_write(tmp_path, GOOD.replace("30.00", "-30.00")), until="2024-01-31")
    w = [str(d) for d in s.warnings]
    assert any(re.search(r"log\.csv:5:3: warning: 1 negative amount .* returns and left out", m) for m in w)
    assert s.customers.set_index("customer").loc["a", "x"] == 1.0


def test_duplicated_rows_are_dropped_with_a_warning(tmp_path) -> None:
    s = summarise(_write(tmp_path, GOOD + "b,2024-01-03,7.50,drink\n"), until="2024-01-31")
    assert any(re.search(r"log\.csv:11:1: warning: 1 rows? exactly repeat", str(d)) for d in s.warnings)
    assert s.customers.set_index("customer").loc["b", "first_amount"] == 7.5


def test_customers_only_after_until_are_left_out_with_a_warning(tmp_path) -> None:
    s = summarise(_write(tmp_path, GOOD + "d,2024-02-10,5.00,food\n"), until="2024-01-31", holdout_until="2024-02-29")
    w = " ".join(str(d) for d in s.warnings)
    assert re.search(r"log\.csv:11:1: warning: 1 customer first bought after the calibration end 2024-01-31", w)
    assert "d" not in set(s.customers["customer"])


def test_rows_after_until_without_a_holdout_are_counted_in_a_warning(tmp_path) -> None:
    s = summarise(_write(tmp_path, GOOD), until="2024-01-31")
    assert any("2 rows after --until 2024-01-31" in str(d) and "--holdout-until" in str(d) for d in s.warnings)


def test_empty_calibration_period_is_an_error(tmp_path) -> None:
    msg = _error(_write(tmp_path, GOOD), until="2023-12-01")
    assert re.search(r"log\.csv:2:2: the calibration period is empty", msg) and "2024-01-01" in msg


def test_bad_options(tmp_path) -> None:
    p = _write(tmp_path, GOOD)
    assert "<command line>:1:1: --until must be a date" in _error(p, until="last tuesday")
    assert "must come after" in _error(p, until="2024-01-31", holdout_until="2024-01-15")
    assert "no such file" in _error(tmp_path / "missing.csv")


def test_missing_customer_id_and_parquet_rows(tmp_path) -> None:
    frame = pd.read_csv(_write(tmp_path, GOOD))
    frame.loc[3, "customer_id"] = None
    frame.to_parquet(tmp_path / "bad.parquet")
    msg = _error(tmp_path / "bad.parquet")
    assert re.search(r"bad\.parquet:4:1: 1 row with no customer id in column 'customer_id' \(row 4\)", msg)


def test_a_log_of_returns_only_says_so(tmp_path) -> None:
    """Every amount negative: read as returns, nothing is left to fit, and the message says why (not an empty
    calibration period)."""
    returns = GOOD.replace(",10.00,", ",-10.00,").replace(",5.00,", ",-5.00,").replace(",20.00,", ",-20.00,") \
        .replace(",30.00,", ",-30.00,").replace(",7.50,", ",-7.50,").replace(",12.00,", ",-12.00,") \
        .replace(",8.00,", ",-8.00,").replace(",40.00,", ",-40.00,").replace(",9.00,", ",-9.00,")
    msg = _error(_write(tmp_path, returns))
    assert msg == (f"{tmp_path / 'log.csv'}:2:3: no purchase is left to fit: every row was left out (9 negative "
                   "amounts read as returns); a transaction log needs purchases with positive amounts in column "
                   "'amount'")


def test_a_missing_column_names_the_header_once_and_a_wrong_separator_is_named(tmp_path) -> None:
    msg = _error(_write(tmp_path, GOOD.replace(",amount,", ",paid_by,")))
    assert msg.endswith("is in the header (customer_id, date, paid_by, category); name it with --amount COL"), msg
    msg = _error(_write(tmp_path, GOOD.replace(",", ";")))
    assert msg.endswith("is in the header (customer_id;date;amount;category); the header is one column holding "
                        "';': the log must be comma-separated (save it as CSV with commas)"), msg


def test_a_ragged_line_and_an_empty_file_are_named_where_they_are(tmp_path) -> None:
    lines = GOOD.splitlines()
    lines[4] += ",extra,more"  # line 5 of the file: two fields too many
    msg = _error(_write(tmp_path, "\n".join(lines) + "\n"))
    assert msg == (f"{tmp_path / 'log.csv'}:5:1: line 5 has 6 fields, the header 4: a value holding a comma needs "
                   "quotes around it, or the line has a field too many")
    assert _error(_write(tmp_path, "")) == (f"{tmp_path / 'log.csv'}:1:1: the transaction log is empty: it needs a "
                                            "header line (customer, date and amount columns) and a row per purchase")

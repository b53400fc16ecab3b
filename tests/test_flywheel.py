"""The store and its flywheel (lab/engine/store.py), driven one day at a time through `Store.end_of_day`,
against values computed by hand from the formulas in docs/MODEL.md (section 10) and docs/OUTPUTS.md."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lab.engine.store import CALENDAR_FIELDS, DayBook, Store, Stores, calendar_field
from tests.conftest import with_changes

# a store whose numbers are easy to follow: 4 staff at $36,500 a year ($400 a day together), $10 a day of fixed costs,
# $2 a day of marketing, profit sharing of 10% every 3 days, nobody quits, starting staff without
# experience (so competence stays at its reference and service quality moves only with the load)
BASE = {
    "store__staff__count": 4, "store__staff__wage_per_year": 36500.0, "store__staff__turnover_per_year": 0.0,
    "store__staff__hiring_cost": 50.0, "store__staff__contacts_per_day": 10.0, "store__staff__experience_days": 50.0,
    "store__staff__initial_experience_days": 0.0, "store__staff__satisfaction": 0.6, "store__staff__bonus_effect": 0.2,
    "store__staff__turnover_satisfaction_effect": 3.0,
    "store__fixed_cost_per_year": 3650.0, "store__marketing__budget_per_year": 730.0,
    "store__profit_sharing__share": 0.1, "store__profit_sharing__every_days": 3,
    "store__learning_rate": 1.0, "store__prior_volume_days": 10.0, "store__service_quality": 0.8,
    "market__spend_per_year": 36500.0,
}


@pytest.fixture
def make_store(classroom):
    def make(seed: int = 0, **changes) -> Store:
        sc = with_changes(classroom.scenario, **{**BASE, **changes})
        return Store(sc, expected_daily_sales=100.0, rng=np.random.default_rng(seed))
    return make


def book(**kw) -> DayBook:
    """A day of trading: $1,000 of sales, $100 off, $400 cost of goods, $20 of free goods, unless told otherwise."""
    base = dict(gross_sales=1000.0, discounts=100.0, revenue=900.0, cogs=400.0, reward_goods=20.0)
    base.update(kw)
    return DayBook(**base)


def test_a_day_closes_its_books(make_store) -> None:
    store = make_store()
    day = store.end_of_day(book(offers_cost=5.0, bad_debt=3.0, interest=2.0, fees=1.0, repeat_revenue=300.0,
                                contacts=8, complaints=2, resolved=7, purchases=20, repeat_purchases=12,
                                acquired=3, acquired_referral=1, lost=2, credit_charged=40.0, credit_repaid=9.0,
                                points_awarded=90.0, points_redeemed=30.0, points_expired=4.0), 7.0, True)
    # gross profit 900 - 400 - 20 = 480; operating 480 - 400 - 10 - 2 - 0 (hiring) - 5 - 7 - 3 + 2 + 1 = 56
    assert day["gross_profit"] == 480.0
    assert (day["wages"], day["fixed_costs"], day["marketing"], day["hiring_cost"]) == (400.0, 10.0, 2.0, 0.0)
    assert day["operating_profit"] == pytest.approx(56.0)
    assert day["profit_sharing"] == 0.0  # the first payout is on day 3
    assert day["net_profit"] == pytest.approx(56.0)
    assert day["margin"] == pytest.approx(480.0 / 900.0)
    assert day["programme_running_cost"] == 7.0
    for key, value in (("gross_sales", 1000.0), ("discounts", 100.0), ("revenue", 900.0), ("cogs", 400.0),
                       ("reward_goods_cost", 20.0), ("offers_cost", 5.0), ("bad_debt", 3.0),
                       ("interest_income", 2.0), ("fee_income", 1.0), ("purchases", 20), ("repeat_purchases", 12),
                       ("acquired", 3), ("acquired_referral", 1), ("lost", 2), ("contacts", 8), ("complaints", 2),
                       ("contacts_resolved", 7), ("credit_charged", 40.0), ("credit_repaid", 9.0),
                       ("points_awarded", 90.0), ("points_redeemed", 30.0), ("points_expired", 4.0)):
        assert day[key] == value, key


def test_margin_is_undefined_without_revenue(make_store) -> None:
    store = make_store()
    day = store.end_of_day(DayBook(), 0.0, True)
    assert math.isnan(day["margin"])
    assert day["repeat_sales_share"] == 0.0 and day["market_share"] == 0.0
    small = store.end_of_day(DayBook(revenue=0.5, cogs=0.2, repeat_revenue=0.1), 0.0, True)
    assert small["margin"] == pytest.approx(0.6)
    assert small["repeat_sales_share"] == pytest.approx(0.2)  # of the 30 days' $0.50 of revenue


def test_profit_sharing_pays_a_share_of_the_profit_since_the_last_payout(make_store) -> None:
    store = make_store()
    days = [store.end_of_day(book(), 0.0, True) for _ in range(6)]
    # operating profit 480 - 412 = 68 a day; paid on days 3 and 6: 10% of 3 x 68 each time, once
    assert [d["operating_profit"] for d in days] == pytest.approx([68.0] * 6)
    assert [d["profit_sharing"] for d in days] == pytest.approx([0, 0, 20.4, 0, 0, 20.4])
    assert [d["net_profit"] for d in days] == pytest.approx([68, 68, 47.6, 68, 68, 47.6])
    assert sum(d["net_profit"] for d in days) == pytest.approx(6 * 68 - 2 * 20.4)


def test_no_profit_sharing_after_a_loss(make_store) -> None:
    store = make_store()
    # 68 + 68 - 1412 (a day of $1,480 more cost of goods) = -1276 since the last payout: nothing to share
    days = [store.end_of_day(book(cogs=c), 0.0, True) for c in (400.0, 400.0, 1880.0, 400.0, 400.0, 400.0)]
    assert days[2]["profit_sharing"] == 0.0
    assert days[2]["net_profit"] == pytest.approx(-1412.0)
    assert days[5]["profit_sharing"] == pytest.approx(20.4)  # the loss does not carry into the next period


def test_a_bonus_lifts_staff_satisfaction(make_store) -> None:
    store = make_store()
    sat = [store.end_of_day(book(), 0.0, True)["staff_satisfaction"] for _ in range(4)]
    # no bonus yet: the target is the reference 0.6, where satisfaction already is
    assert sat[:2] == pytest.approx([0.6, 0.6], abs=1e-15)
    # day 3 pays 20.4 to 4 staff whose 3-day wage is 300 each: a bonus of 1.7% of wage -> target 0.6 + 0.2 x 0.17
    target = 0.6 + 0.2 * (20.4 / 4 / 300.0) / 0.1
    assert sat[2] == pytest.approx(0.6 + (target - 0.6) / 90, rel=1e-12)
    assert sat[3] == pytest.approx(sat[2] + (target - sat[2]) / 90, rel=1e-12)  # the bonus keeps pulling


def test_overload_lowers_service_quality_and_then_staff_satisfaction(make_store) -> None:
    store = make_store()
    # 60 contacts for 4 staff handling 10 each: load 1.5, service quality 0.8 / (1 + 0.5)
    d1 = store.end_of_day(book(contacts=60), 0.0, True)
    assert d1["service_load"] == 1.5
    assert d1["service_quality"] == pytest.approx(0.8 / 1.5, rel=1e-12)
    assert d1["staff_satisfaction"] == pytest.approx(0.6, abs=1e-15)  # yesterday was not overloaded
    # the next day, the overload of 0.5 weighs on satisfaction's target: 0.6 - 0.3 x 0.5
    d2 = store.end_of_day(book(contacts=20), 0.0, True)
    assert d2["staff_satisfaction"] == pytest.approx(0.6 + (0.45 - 0.6) / 90, rel=1e-12)
    assert d2["service_load"] == 0.5
    assert d2["service_quality"] == pytest.approx(0.8, rel=1e-12)  # an easy day does not raise quality above its level


def test_with_the_loop_cut_service_quality_stays_put(make_store) -> None:
    store = make_store()
    qualities = [store.end_of_day(book(contacts=c), 0.0, False)["service_quality"] for c in (60, 200, 0)]
    assert qualities == [0.8, 0.8, 0.8]


def test_service_quality_follows_staff_competence(make_store) -> None:
    """Starting experience is drawn around its mean m; competence 1 - exp(-x / tau) is taken relative to the
    expected competence m / (m + tau) of such a workforce; nobody quits, so everyone gains a day a day."""
    store = make_store(seed=4, store__staff__initial_experience_days=100.0, store__staff__count=30)
    x = store.experience.copy()
    assert len(x) == 30 and x.std() > 0
    for day in (1, 2):
        rec = store.end_of_day(book(), 0.0, True)
        competence = np.mean(1.0 - np.exp(-(x + day) / 50.0))
        assert rec["service_quality"] == pytest.approx(min(0.8 * competence / (100.0 / 150.0), 1.0), rel=1e-12)
        assert rec["staff_experience_days"] == pytest.approx(float(np.mean(x + day)), rel=1e-12)


def test_leavers_are_replaced_by_new_hires_who_cost_money(make_store) -> None:
    staff = 20000  # enough draws that a hazard off by a fraction of a percent changes who leaves
    store = make_store(seed=9, store__staff__count=staff, store__staff__turnover_per_year=73.0,
                       store__staff__initial_experience_days=20.0)
    twin = np.random.default_rng(9)
    experience = twin.exponential(20.0, size=staff)  # the store draws its staff's experience first
    np.testing.assert_array_equal(store.experience, experience)
    quits = 0
    hires = 0
    for _ in range(3):
        rec = store.end_of_day(book(), 0.0, True)
        # at the reference satisfaction the daily quit hazard is 73 / 365 = 0.2
        sat = rec["staff_satisfaction"]
        hazard = 73.0 / 365.0 * math.exp(3.0 * (0.6 - sat))
        leave = twin.random(staff) < -math.expm1(-hazard)
        experience = np.where(leave, 0.0, experience + 1.0)
        assert rec["staff_quits"] == int(leave.sum())
        assert rec["hiring_cost"] == 50.0 * hires  # yesterday's leavers are hired today
        wages = staff * 100.0
        assert rec["operating_profit"] == pytest.approx(480.0 - wages - 12.0 - 50.0 * hires, rel=1e-12)
        hires = int(leave.sum())
        quits += hires
        np.testing.assert_allclose(store.experience, experience, rtol=0, atol=0)
    assert store.quits == quits > 0


def test_unhappy_staff_quit_more(make_store) -> None:
    store = make_store(seed=2, store__staff__count=2000, store__staff__turnover_per_year=36.5)
    store.staff_satisfaction = 0.2
    rec = store.end_of_day(book(), 0.0, True)
    sat = 0.2 + (0.6 - 0.2) / 90
    assert rec["staff_satisfaction"] == pytest.approx(sat, rel=1e-12)
    hazard = 0.1 * math.exp(3.0 * (0.6 - sat))  # about 3.2 times the reference hazard of 0.1
    p = -math.expm1(-hazard)
    assert abs(rec["staff_quits"] - 2000 * p) <= 4 * math.sqrt(2000 * p * (1 - p))


def test_unit_costs_fall_along_the_experience_curve(make_store) -> None:
    store = make_store(store__learning_rate=0.8)
    # the curve is anchored at 10 days of the expected $100 of daily sales: v0 = $1,000
    f1 = store.end_of_day(book(gross_sales=1000.0), 0.0, True)["unit_cost_factor"]
    f2 = store.end_of_day(book(gross_sales=2000.0), 0.0, True)["unit_cost_factor"]
    assert f1 == pytest.approx(0.8, rel=1e-12)   # volume doubled: one step of the learning rate
    assert f2 == pytest.approx(0.64, rel=1e-12)  # doubled twice (4,000 = 4 x 1,000)
    assert store.cum_volume == 3000.0
    flat = make_store(store__learning_rate=0.8, store__prior_volume_days=0.001)  # v0 floored at $1
    assert flat.end_of_day(book(gross_sales=1.0), 0.0, True)["unit_cost_factor"] == pytest.approx(0.8, rel=1e-12)


def test_repeat_sales_and_market_share_over_the_trailing_30_days(make_store) -> None:
    store = make_store()
    recs = [store.end_of_day(book(revenue=float(d), repeat_revenue=float(d) * (1 - d % 2)), 0.0, True)
            for d in range(1, 41)]
    # day 1: revenue 1 of a market of 100 a day; none of it repeat (only even days have repeat sales)
    assert recs[0]["market_share"] == pytest.approx(0.01)
    assert recs[0]["repeat_sales_share"] == 0.0
    # day 2: 3 of 200; 2 of 3 repeat
    assert recs[1]["market_share"] == pytest.approx(3 / 200)
    assert recs[1]["repeat_sales_share"] == pytest.approx(2 / 3)
    # day 40: the window is days 11..40 -- revenue 765, repeat on the even days 12, 14, ..., 40: 390
    assert recs[-1]["market_share"] == pytest.approx(765 / 3000)
    assert recs[-1]["repeat_sales_share"] == pytest.approx(390 / 765)


def test_the_store_calendar() -> None:
    assert CALENDAR_FIELDS == ("store.day_of_week", "store.day_of_month", "store.month", "store.day_of_year", "now")
    expected = {0: (1, 1, 1, 1), 6: (7, 7, 1, 7), 7: (1, 8, 1, 8), 29: (2, 30, 1, 30), 30: (3, 1, 1, 31),
                31: (4, 2, 2, 32), 364: (1, 5, 12, 365), 365: (2, 6, 1, 1), 400: (2, 11, 2, 36)}
    for day, values in expected.items():
        got = tuple(calendar_field(f, day) for f in CALENDAR_FIELDS[:4])
        assert got == values, day
        assert all(isinstance(v, float) for v in got)
        assert calendar_field("now", day) == float(day)
    # a 30.42-day month: day 334 of the year is still November, day 335 is December
    assert calendar_field("store.month", 334) == 11.0 and calendar_field("store.month", 335) == 12.0
    with pytest.raises(KeyError, match="store.week"):
        calendar_field("store.week", 3)


@pytest.mark.parametrize("turnover, mean", [(0.5, 730.0), (4.0, 91.25), (0.0, 3650.0)])
def test_starting_experience_defaults_to_the_steady_state_of_turnover(make_store, turnover, mean) -> None:
    store = make_store(seed=5, store__staff__initial_experience_days=None, store__staff__turnover_per_year=turnover,
                       store__staff__count=20)
    np.testing.assert_array_equal(store.experience, np.random.default_rng(5).exponential(mean, size=20))
    # the reference competence is that of such a workforce, m / (m + tau): with nobody leaving in a day
    # (turnover 0) service quality moves by the drawn staff's competence against it
    if turnover == 0.0:
        rec = store.end_of_day(book(), 0.0, True)
        competence = np.mean(1.0 - np.exp(-(store.experience) / 50.0))
        assert rec["service_quality"] == pytest.approx(min(0.8 * competence / (mean / (mean + 50.0)), 1.0), rel=1e-12)


def test_staff_without_experience_draw_nothing_at_the_start(make_store) -> None:
    """With no starting experience the random stream goes straight to the first day's leavers."""
    store = make_store(seed=8, store__staff__count=1000, store__staff__turnover_per_year=73.0)
    np.testing.assert_array_equal(store.experience, np.zeros(1000))
    rec = store.end_of_day(book(), 0.0, True)
    leave = np.random.default_rng(8).random(1000) < -math.expm1(-0.2)
    assert rec["staff_quits"] == int(leave.sum())


def test_a_little_starting_experience_is_drawn_and_sets_the_reference(make_store) -> None:
    store = make_store(seed=3, store__staff__initial_experience_days=0.5, store__staff__count=40,
                       store__service_quality=0.1)
    x = np.random.default_rng(3).exponential(0.5, size=40)
    np.testing.assert_array_equal(store.experience, x)
    rec = store.end_of_day(book(), 0.0, True)
    competence = np.mean(1.0 - np.exp(-(x + 1.0) / 50.0))
    assert rec["service_quality"] == pytest.approx(0.1 * competence / (0.5 / 50.5), rel=1e-12)


def test_service_quality_is_at_most_one(make_store) -> None:
    store = make_store(seed=8, store__staff__initial_experience_days=100.0, store__staff__count=5,
                       store__service_quality=1.0)
    competence = np.mean(1.0 - np.exp(-(store.experience + 1.0) / 50.0))
    assert competence / (100.0 / 150.0) > 1.0  # this seed's staff are more experienced than the reference
    assert store.end_of_day(book(), 0.0, True)["service_quality"] == 1.0


def test_payouts_come_every_so_many_days(make_store) -> None:
    store = make_store(store__profit_sharing__every_days=2)
    paid = [store.end_of_day(book(), 0.0, True)["profit_sharing"] for _ in range(4)]
    assert paid == pytest.approx([0.0, 13.6, 0.0, 13.6])  # 10% of two days of 68
    assert store.day == 4


def test_staff_without_wages_get_no_bonus_ratio(make_store) -> None:
    store = make_store(store__staff__wage_per_year=0.0)
    sat = [store.end_of_day(book(), 0.0, True)["staff_satisfaction"] for _ in range(4)]
    assert sat == pytest.approx([0.6] * 4, abs=1e-15)


def test_staff_satisfaction_aims_at_most_at_one(make_store) -> None:
    # a wage of $100 a year: 20.4+ of profit sharing is a bonus of many times the 3-day wage of $0.82
    store = make_store(store__staff__wage_per_year=100.0)
    sat = [store.end_of_day(book(), 0.0, True)["staff_satisfaction"] for _ in range(3)]
    assert sat[2] == pytest.approx(0.6 + (1.0 - 0.6) / 90, rel=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_stores_joined_close_each_world_to_its_bits_alone(classroom, data) -> None:
    """Stores.join: worlds with their own staff, costs and market, closed together day by day, give each world
    the record and state its store gives alone, bit for bit (a stack's stores must not see one another)."""
    k = data.draw(st.integers(1, 5), label="worlds")
    count = data.draw(st.integers(1, 12), label="staff")
    worlds = []
    for _ in range(k):
        changes = {**BASE, "store__staff__count": count, "store__profit_sharing__every_days": 5,
                   "store__staff__turnover_per_year": data.draw(st.floats(0.0, 3.0)),
                   "store__staff__bonus_effect": data.draw(st.floats(0.0, 0.3)),
                   "store__staff__wage_per_year": data.draw(st.floats(10_000.0, 60_000.0)),
                   "store__staff__initial_experience_days": data.draw(st.sampled_from([None, 0.0, 200.0])),
                   "store__profit_sharing__share": data.draw(st.floats(0.0, 0.3)),
                   "store__learning_rate": data.draw(st.floats(0.7, 1.0)),
                   "market__spend_per_year": data.draw(st.floats(1e4, 1e6))}
        worlds.append(with_changes(classroom.scenario, **changes))
    flywheel = np.array(data.draw(st.lists(st.booleans(), min_size=k, max_size=k)))
    alone = [Store(sc, expected_daily_sales=100.0, rng=np.random.default_rng(w)) for w, sc in enumerate(worlds)]
    joined = [Store(sc, expected_daily_sales=100.0, rng=np.random.default_rng(w)) for w, sc in enumerate(worlds)]
    stores = Stores.join(joined)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    days = []  # (alone's records, the joined record) of each day, compared once all are closed
    for _ in range(40):
        books = [book(revenue=float(rng.uniform(0, 2000)), cogs=float(rng.uniform(0, 1500)),
                      gross_sales=float(rng.uniform(0, 2500)), repeat_revenue=float(rng.uniform(0, 900)),
                      contacts=int(rng.integers(0, 80))) for _ in range(k)]
        running = rng.uniform(0, 50, k)
        days.append(([alone[w].end_of_day(books[w], float(running[w]), bool(flywheel[w])) for w in range(k)],
                     stores.end_of_day(books, running, flywheel)))
    for own, together in days:
        for w in range(k):
            assert list(own[w]) == list(together)
            for name, value in own[w].items():
                assert np.float64(value).tobytes() == np.float64(together[name][w]).tobytes(), (w, name)
    for w in range(k):
        np.testing.assert_array_equal(joined[w].experience, alone[w].experience)
        assert joined[w].quits == alone[w].quits and joined[w].service_quality == alone[w].service_quality


def test_a_joined_store_closes_its_day_only_with_the_others(make_store) -> None:
    stores = [make_store(seed=s) for s in (1, 2)]
    Stores.join(stores)
    with pytest.raises(TypeError, match="Stores.end_of_day"):
        stores[0].end_of_day(book(), 0.0, True)
    with pytest.raises(ValueError, match="fresh stores"):
        Stores.join(stores)

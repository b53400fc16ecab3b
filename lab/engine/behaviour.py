"""How customers respond to a programme: the behavioural formulas, written once, for both engines.

Every formula here works on numpy arrays (a batch of customers, as the
vectorised engine holds them) and on plain floats (one customer, as the
reference engine holds them); both engines call these functions and keep
only their own control flow -- which customers, in which order, and whether
a response applies at all (no points ledger, no credit line, behaviour off).
Keep it that way: a response added to one engine only is a second model,
and `tests/test_behaviour.py` feeds both engines' per-customer steps the same
state so that such a drift fails a test.

Satisfaction is a number in [0, 1] that relaxes towards a target with the
scenario's memory (`satisfaction_memory_days`); rewards, service contacts,
expiry and missed payments move it at the moment they happen. The purchase
rate is the customer's base rate times a multiplier m(t), capped by the
scenario-wide bound M used for thinning; the dropout chance is moved by a
multiplier d. The parameters are the scenario's `Behaviour` options (see
`lab.scenario.model.Behaviour` for each one's meaning and range).

The arithmetic is laid out in the order the vectorised engine has always
done it, so that the same seed gives the same bits.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from lab.population.customers import SegmentTable
    from lab.scenario.model import Behaviour

M_CAP = 6.0  # the largest purchase-rate multiplier any scenario may reach (caps the thinning bound M)
RATE_BOUND_HEADROOM = 1.3  # M is the product of the largest factors times this margin (offers, trials)
REWARD_DELIGHT_CAP = 0.2  # the most satisfaction one reward can add, however large
EXPIRY_FRUSTRATION_CAP = 0.3  # the most satisfaction one expiry can take away, however many points are lost
MISSED_PAYMENT_DAYS = 30.0  # a missed credit payment hurts like this many days at a fully used line
COMPLAINT_PENALTY = 2.0  # a badly handled complaint costs this many times what a well-handled contact gains
DAYS_PER_YEAR = 365.0  # the seasonal cycle's length

Num = Any  # a float or a numpy array of floats: every function below takes either


# --------------------------------------------------------------------------- the purchase rate
#: The scenario parameters `rate_bound` reads, as batch factor paths ('*': any segment). A batch that varies one
#: moves M, and with it which candidates are drawn, from one design point to the next whatever its streams
#: (lab.report.batch says so). tests/test_behaviour.py checks the list against the function.
RATE_BOUND_PATHS = ("store.seasonality", "behaviour.enabled", "behaviour.goal_gradient",
                    "behaviour.satisfaction_rate_effect", "behaviour.credit_spend_ahead", "behaviour.membership_effect",
                    "population.segments.*.reward_sensitivity", "population.segments.*.satisfaction",
                    "population.segments.*.credit_appetite")


def rate_bound(b: "Behaviour", seasonality: float, segments: "SegmentTable") -> float:
    """M: the largest purchase-rate multiplier any customer can reach in this scenario.

    It depends only on the scenario (never on the policy), so every policy thins the
    same candidates: common random numbers across policies."""
    if not b.enabled:
        return 1.0
    bound = (1 + seasonality) * (1 + b.goal_gradient * float(segments.reward_sensitivity.max()))
    bound *= math.exp(b.satisfaction_rate_effect * (1 - float(segments.satisfaction.min())))
    bound *= 1 + b.credit_spend_ahead * float(segments.credit_appetite.max())
    if b.membership_effect > 0:
        bound *= membership_factor(b, float(segments.reward_sensitivity.max()), 1.0)
    return float(min(bound * RATE_BOUND_HEADROOM, M_CAP))


def seasonal_factor(t: Num, seasonality: float, peak_day: int) -> Num:
    """1 + seasonality x cos(2 pi (day of year - (peak_day - 1)) / 365): busiest on the peak day."""
    doy = np.mod(t, DAYS_PER_YEAR)
    return 1 + seasonality * np.cos(2 * np.pi * (doy - (peak_day - 1)) / DAYS_PER_YEAR)


def satisfaction_rate_factor(b: "Behaviour", s: Num, ref: Num) -> Num:
    """exp(satisfaction_rate_effect x (s - ref)): satisfied customers buy more often."""
    return np.exp(b.satisfaction_rate_effect * (s - ref))


def goal_gradient_factor(b: "Behaviour", sensitivity: Num, progress: Num) -> Num:
    """1 + goal_gradient x reward sensitivity x progress^power: customers speed up near a reward."""
    return 1 + b.goal_gradient * sensitivity * progress ** b.goal_gradient_power


def membership_factor(b: "Behaviour", sensitivity: Num, member: Num) -> Num:
    """1 + membership_effect x reward sensitivity x (is a member): being in the programme, whatever the progress.

    Leenheer et al. (2007) found a small positive membership effect; Liu (2007) saw light and moderate buyers'
    frequency jump within three months of joining, long before most could near a reward. The goal gradient and
    the hope act only through progress, which light buyers rarely make, so without this term the model has no
    response for them at all (docs/MODEL.md, 4b and 4d)."""
    return 1 + b.membership_effect * sensitivity * member


def credit_factor(b: "Behaviour", appetite: Num, has_credit: Num, used: Num) -> Num:
    """1 + credit_spend_ahead x appetite x (has credit) x (1 - share used): unused credit brings spending forward."""
    return 1 + b.credit_spend_ahead * appetite * has_credit * (1 - used)


def headroom(b: "Behaviour", segments: "SegmentTable", lam: np.ndarray, idx: Any) -> Num | None:
    """h: the share of the reward-driven response a customer has room for, 1 / (1 + response_headroom x
    lam / lam_ref), lam_ref the population's mean base rate (segments weighted by share); None when off.

    A heavy buyer already near their category needs cannot buy much more, a light buyer can (Liu 2007: heavy
    buyers claimed most rewards but did not change behaviour; light and moderate buyers bought more). `lam`:
    every customer's base purchase rate, `idx` the customers wanted (an array, or one int): indexed only when on."""
    if b.response_headroom <= 0:
        return None
    return 1.0 / (1.0 + b.response_headroom * (lam[idx] / mean_base_rate(segments)))


def mean_base_rate(segments: "SegmentTable") -> float:
    """lam_ref of `headroom`: the population's mean base purchase rate per day, r / alpha of each segment weighted by
    its share."""
    share = segments.share / np.sum(segments.share)
    return float(np.sum(share * segments.r / segments.alpha_days))


def wear_out(b: "Behaviour", since: Num, t: Num) -> Num | None:
    """w: how much of the reward-driven response a member still shows after t - since days in the programme,
    exp(-wear_out x (t - since) / 365); None when off (wear_out 0).

    Meyer-Waarden & Benavent (2009): buying changes only slightly after joining, and the small changes erode six
    to nine months after joining. Habituation (section 7 of docs/MODEL.md) dulls the delight of each reward; this
    erodes the response to the programme itself."""
    if b.wear_out <= 0:
        return None
    return np.exp(-b.wear_out * np.maximum(np.asarray(t, dtype=float) - since, 0.0) / 365.0)


def response_share(b: "Behaviour", segments: "SegmentTable", lam: np.ndarray, acquired_at: np.ndarray, idx: Any,
                   launch_day: int, t: Num) -> Num | None:
    """The share of the reward-driven response customers `idx` show at time t: headroom h (their base rate) times
    wear-out w (their days in the programme, counted from the later of their acquisition and the launch day, when
    members join: there are no enrolment delays); None when both are off. Both engines pass it as `headroom` to
    rate_multiplier and dropout_multiplier."""
    h = headroom(b, segments, lam, idx)
    if b.wear_out <= 0:
        return h
    w = wear_out(b, np.maximum(acquired_at[idx], float(launch_day)), t)
    return w if h is None else h * w


def rate_multiplier(b: "Behaviour", base: Num, t: Num, s: Num, ref: Num, *, seasonality: float, peak_day: int,
                    bound: float, goal: tuple[Num, Num] | None = None, offer_uplift: Num | None = None,
                    credit: tuple[Num, Num, Num] | None = None, headroom: Num | None = None,
                    member: tuple[Num, Num] | None = None) -> Num:
    """m(t): how much faster than their base rate customers buy right now, capped at the bound M.

    `base`: the customers' own multiplier (trials adopted), multiplied in place when it is an array;
    `s`, `ref`: satisfaction now and its reference; `goal`: (reward sensitivity, progress to the next
    reward), None without points; `offer_uplift`: each customer's live offer's frequency uplift (0 when
    none), None when no offer is live; `credit`: (appetite, has credit, share used), None without credit;
    `headroom`: h (see `headroom`), which scales the reward-driven parts only (goal gradient, offer
    uplift and membership effect, m_reward - 1 becomes h x (m_reward - 1)), None when off; `member`: (reward
    sensitivity, whether a member), None without points or without a membership effect."""
    mult = base
    if seasonality > 0:
        mult *= seasonal_factor(t, seasonality, peak_day)
    mult *= satisfaction_rate_factor(b, s, ref)
    if goal is not None:
        mult *= goal_gradient_factor(b, goal[0] if headroom is None else goal[0] * headroom, goal[1])
    if offer_uplift is not None:
        mult *= 1 + (offer_uplift if headroom is None else headroom * offer_uplift)
    if member is not None:
        mult *= membership_factor(b, member[0] if headroom is None else member[0] * headroom, member[1])
    if credit is not None:
        mult *= credit_factor(b, *credit)
    return np.minimum(mult, bound)


# --------------------------------------------------------------------------- dropout
def dropout_multiplier(b: "Behaviour", s: Num, ref: Num, sensitivity: Num = None, progress: Num = None,
                       headroom: Num | None = None) -> Num:
    """d: how much more likely than at the reference satisfaction customers are to drop out.

    exp(-satisfaction_churn_effect x (s - ref)), divided by 1 + points_hope x sensitivity x progress
    when `progress` (to the next reward) is given: customers part-way to a reward stay for it. With
    `headroom` h, the hope term is h x points_hope x sensitivity x progress."""
    dm = np.exp(-b.satisfaction_churn_effect * (s - ref))
    if progress is not None:
        if headroom is not None:
            sensitivity = sensitivity * headroom
        dm = dm / (1.0 + b.points_hope * sensitivity * progress)
    return dm


def dropout_probability(p: Num, dm: Num, rate_mult: Num, competitor_pull: float) -> Num:
    """BG/NBD: the chance of dropping out after a repeat purchase, p' = 1 - (1 - p)^(d / m) x (1 - pull).

    A customer the programme makes buy m times faster gets m times the dropout
    opportunities, so p is spread over them: the dropout hazard per day is what
    satisfaction (d) says, not what the pace of buying says. A competitor lures
    away a share `pull` of the rest."""
    return 1.0 - np.power(1.0 - p, dm / rate_mult) * (1.0 - competitor_pull)


def rescaled_death(t: Num, death: Num, old_mult: Num, new_mult: Num) -> Num:
    """Pareto/NBD: the remaining lifetime after t rescaled from dropout multiplier old to new (memoryless)."""
    return t + (death - t) * old_mult / new_mult


# --------------------------------------------------------------------------- satisfaction
def satisfaction_target(b: "Behaviour", ref: Num, quality: float, quality0: float, used: Num | None = None) -> Num:
    """Where satisfaction drifts: the reference level, moved by service quality (above its start) and by debt.

    `used`: the share of the customers' credit lines in use, None without credit."""
    target = ref + b.service_quality_weight * (quality - quality0)
    if used is not None:
        target = target - b.debt_stress * b.satisfaction_memory_days * used
    return np.clip(target, 0.0, 1.0)


def satisfaction_at(level: Num, since: Num, t: Num, target: Num, memory_days: float) -> Num:
    """Satisfaction at time t: `level` (recorded at `since`) relaxing towards `target`, exp(-elapsed / memory)."""
    dt = np.maximum(np.asarray(t) - since, 0.0)
    w = np.exp(-dt / memory_days)
    return target + (level - target) * w


def bumped(s: Num, delta: Num) -> Num:
    """Satisfaction s moved by delta, kept within [0, 1]."""
    return np.clip(s + delta, 0.0, 1.0)


# --------------------------------------------------------------------------- rewards
def decayed_heat(heat: Num, since: Num, t: Num, memory_days: float) -> Num:
    """Recent rewards (`heat`, counted at `since`) brought up to time t: they fade with the satisfaction memory."""
    return heat * np.exp(-np.maximum(t - since, 0.0) / memory_days)


def wear(heat: Num, habituation: float, share: Num | None = None) -> Num:
    """How much a reward still delights: 1 / (1 + habituation x recent rewards), times `share`, the customer's
    response share (see `response_share`: headroom x wear-out), when it is not None.

    A reward's delight is part of the reward-driven response: it raises satisfaction, and satisfaction raises
    the purchase rate and keeps customers. Liu (2007): heavy buyers claimed most rewards yet did not change
    their behaviour, so the delight that would change it is limited by their headroom like the goal gradient;
    Meyer-Waarden & Benavent (2009): the change erodes after joining, so it wears out with tenure as well."""
    worn = 1.0 / (1.0 + habituation * heat)
    return worn if share is None else worn * share


def reward_gain(b: "Behaviour", value: Num, basket: Num, sensitivity: Num, worn: Num) -> Num:
    """Satisfaction gained from rewards worth `value`: reward_delight per average basket, at most
    REWARD_DELIGHT_CAP, times the customer's reward sensitivity and the reward's wear."""
    gain = np.minimum(b.reward_delight * value / basket, REWARD_DELIGHT_CAP)
    return gain * (sensitivity * worn)


def free_item_gain(b: "Behaviour", favourite: Num, sensitivity: Num, worn: Num) -> Num:
    """Satisfaction gained from a free item: free_item_delight when it is in the customer's favourite category."""
    return b.free_item_delight * favourite * sensitivity * worn


def expiry_frustration(b: "Behaviour", value: Num, basket: Num) -> Num:
    """The (negative) satisfaction change when points worth `value` expire: expiry_frustration per average
    basket, at most EXPIRY_FRUSTRATION_CAP."""
    return -np.minimum(b.expiry_frustration * value / basket, EXPIRY_FRUSTRATION_CAP)


def missed_payment_hit(b: "Behaviour") -> float:
    """The (negative) satisfaction change when a customer misses a credit payment."""
    return -b.debt_stress * MISSED_PAYMENT_DAYS


def adopts_trial(new: Num, u: Num, variety_seeking: Num) -> Num:
    """Whether a trial makes customers adopt its category: only a category they have never bought,
    with probability their segment's variety seeking (`u`: their uniform draw)."""
    return new & (u < variety_seeking)


def tastes_after_trial(prefs: np.ndarray, codes: np.ndarray, n_categories: int) -> np.ndarray:
    """Cumulative tastes (one row per customer) after adopting category `codes`: its weight rises by
    1 / categories, then the tastes are renormalised. `prefs` is changed in place."""
    prefs[np.arange(len(codes)), codes] += 1.0 / n_categories
    return np.cumsum(prefs / prefs.sum(axis=1, keepdims=True), axis=1)


def trial_rate_factor(b: "Behaviour") -> float:
    """The purchase-rate multiplier a customer gains with each category adopted."""
    return 1 + b.trial_uplift


def offer_take_up(response: float, sensitivity: Num) -> Num:
    """The chance that customers take up an offer: its response rate times their reward sensitivity, at most 1."""
    return np.minimum(response * sensitivity, 1.0)


# --------------------------------------------------------------------------- service and word of mouth
def handling_quality(service_quality: float, load: float) -> float:
    """The chance a contact is handled well: service quality, divided by the overload (load above 1)."""
    return service_quality / (1.0 + max(load - 1.0, 0.0))


def contact_shift(b: "Behaviour", resolved: Num, complaint: Num) -> Num:
    """Satisfaction change from a service contact: +recovery when handled well, -2 x recovery for a badly
    handled complaint, nothing for a badly handled inquiry."""
    rec = b.service_recovery
    return np.where(resolved, rec, np.where(complaint, -COMPLAINT_PENALTY * rec, 0.0))


def refers(u: Num, propensity: Num, s: Num) -> Num:
    """Whether a purchase makes customers refer someone: with probability propensity x satisfaction."""
    return u < propensity * s


# --------------------------------------------------------------------------- who joins (self-selection)
ENROL_GRID = 64  # quantile points per trait when averaging the joining chance over a segment's customers
_LOGIT_SPAN = 60.0  # the intercept is searched within +-(|logit participation| + this); beyond, sigma is 0 or 1


def _sigmoid(x: Num) -> Num:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=float)))


def enrol_score(b: "Behaviour", lam: Num, basket: Num) -> Num:
    """How much more a customer leans towards joining: enrol_rate_tilt x log(purchase rate) + enrol_spend_tilt x
    log(mean basket), in log-odds (only differences between customers matter; the intercept absorbs the rest)."""
    return b.enrol_rate_tilt * np.log(np.maximum(lam, 1e-300)) + b.enrol_spend_tilt * np.log(np.maximum(basket, 1e-300))


def self_selects(b: "Behaviour", participation: float) -> bool:
    """Whether joining depends on the customer: behaviour on, a tilt, and a participation strictly between 0 and 1."""
    return b.enabled and (b.enrol_rate_tilt > 0 or b.enrol_spend_tilt > 0) and 0.0 < participation < 1.0


def enrol_intercept(participation: float, scores: np.ndarray, weights: np.ndarray | None = None) -> float:
    """c such that the (weighted) mean of sigma(c + score) is `participation`: the tilt moves who joins, not how
    many. Bisection to the last bit (deterministic, whatever the order of the customers' batches)."""
    scores = np.asarray(scores, dtype=float)
    if scores.size == 0:
        return 0.0
    w = (np.full(scores.size, 1.0 / scores.size) if weights is None
         else np.asarray(weights, dtype=float) / np.sum(weights))
    centre = float(np.sum(w * scores))
    logit = math.log(participation / (1.0 - participation))
    lo, hi = logit - centre - _LOGIT_SPAN, logit - centre + _LOGIT_SPAN
    lo -= float(np.max(scores) - np.min(scores))
    hi += float(np.max(scores) - np.min(scores))
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if float(np.sum(w * _sigmoid(mid + scores))) < participation:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def population_enrol_intercept(b: "Behaviour", participation: float, segments: "SegmentTable") -> float:
    """The intercept for customers who arrive: the joining chance averages `participation` over the scenario's
    customers, each segment's purchase rate lambda ~ Gamma(r, alpha) and mean basket p / nu, nu ~ Gamma(q, gamma),
    averaged on a grid of ENROL_GRID quantiles of each (independent within a segment), weighted by share."""
    from scipy import stats

    u = (np.arange(ENROL_GRID) + 0.5) / ENROL_GRID
    scores, weights = [], []
    share = segments.share / np.sum(segments.share)
    for k in range(len(share)):
        lam = stats.gamma.ppf(u, segments.r[k], scale=1.0 / segments.alpha_days[k])
        basket = segments.spend_p[k] / stats.gamma.ppf(u, segments.spend_q[k], scale=1.0 / segments.spend_gamma[k])
        z = enrol_score(b, lam[:, None], basket[None, :]).ravel()
        scores.append(z)
        weights.append(np.full(z.size, share[k] / z.size))
    return enrol_intercept(participation, np.concatenate(scores), np.concatenate(weights))


def enrol_probability(b: "Behaviour", participation: float, lam: Num, basket: Num, intercept: float) -> Num:
    """The chance a customer joins when the programme is offered to them: sigma(intercept + score) when joining
    self-selects (heavier, bigger-spending customers more likely: Meyer-Waarden & Benavent 2009, Leenheer et al.
    2007), else the policy's participation for everyone."""
    if not self_selects(b, participation):
        return np.full(np.shape(lam), participation) if np.ndim(lam) else participation
    return _sigmoid(intercept + enrol_score(b, lam, basket))


def launch_enrol_probability(b: "Behaviour", participation: float, lam: np.ndarray, basket: np.ndarray) -> np.ndarray:
    """The chance each customer present at a launch joins: tilted as enrol_probability, its intercept set so that
    the mean over exactly these customers is the policy's participation."""
    c = enrol_intercept(participation, enrol_score(b, lam, basket)) if self_selects(b, participation) else 0.0
    return np.asarray(enrol_probability(b, participation, lam, basket, c), dtype=float)

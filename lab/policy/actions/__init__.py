"""The actions of the policy language, one handler each, registered by tag.

A new action is a frozen dataclass in lab.policy.model (added to its `Action`
union, so files can name it), a handler in one of these modules (registered
with :func:`register`), an entry in docs/POLICIES.md (and docs/policy.schema.json
regenerated with `lab schema`), a hypothesis strategy in tests/test_ledgers.py
(ACTION_STRATEGIES), an example in tests/test_policy_files.py (EXAMPLES) and a
case in tests/test_actions.py (VALUE_CASES); the tests enumerate :func:`handlers`
and fail until each of these exists. Money the action spends is charged to a
kind declared in lab.policy.effects.COSTS; goods or contacts it hands out are
records of a kind declared in lab.policy.effects.GIVEN, which also names the
engine's day book their cost goes to.

- points: award, deduct, redeem, referral_reward
- price: discount, voucher
- goods: free_item, trial, offer
- account: set_tier, grant_credit
"""

from __future__ import annotations

from lab.policy.actions import account, goods, points, price  # noqa: F401  (importing registers the handlers)
from lab.policy.actions.base import (
    ActionHandler,
    CheckContext,
    Firing,
    Phrases,
    Problem,
    Valuation,
    handler_for,
    handlers,
    register,
    registered,
    story_handler,
)

__all__ = ["ActionHandler", "CheckContext", "Firing", "Phrases", "Problem", "Valuation", "handler_for", "handlers",
           "register", "registered", "story_handler"]

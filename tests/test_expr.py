"""The policy expression language: typing, semantics, errors, hostile input, vectorisation."""

from __future__ import annotations

import functools
import pickle
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import traced_work

from lab.policy.expr import (
    MAX_TEXT_LENGTH,
    Compiled,
    ExpressionError,
    ExprType,
    Field,
    compile_expression,
)

TIERS = ("member", "silver", "gold")
CATEGORIES = ("shirts", "trousers", "shoes")

SCHEMA: dict[str, Field] = {
    "customer.tier": Field(ExprType.ENUM, TIERS),
    "customer.segment": Field(ExprType.ENUM, TIERS),
    "customer.channel": Field(ExprType.ENUM, ("web", "store")),
    "customer.category_purchases": Field(ExprType.MAP, CATEGORIES),
    "customer.last_purchase": Field(ExprType.NUMBER),
    "purchase.amount": Field(ExprType.NUMBER),
    "purchase.on_credit": Field(ExprType.BOOL),
    "store.region": Field(ExprType.ENUM, ("nord", "süd")),
    "now": Field(ExprType.NUMBER),
}
NO_NOW = {k: v for k, v in SCHEMA.items() if k != "now"}

N = 4
ENV: dict[str, object] = {
    "customer.tier": np.array([0, 1, 2, 2]),
    "customer.segment": 2,
    "customer.channel": np.array([0, 1, 0, 1]),
    "customer.category_purchases": np.array([[1, 2, 3], [5, 0, 0], [6, 1, 1], [0, 0, 0]], dtype=float),
    "customer.last_purchase": np.array([0.0, 100.0, 30.0, 50.0]),
    "purchase.amount": np.array([10.0, 50.0, 75.5, -3.0]),
    "purchase.on_credit": np.array([True, False, True, False]),
    "store.region": np.array([1, 0, 0, 1]),
    "now": 100.0,
}


def run(text: str, env: dict[str, object] = ENV, n: int = N, **kw: object) -> np.ndarray:
    return compile_expression(text, SCHEMA, **kw).evaluate(env, n)


def error_of(text: str, schema: dict[str, Field] = SCHEMA, **kw: object) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        compile_expression(text, schema, **kw)
    assert str(info.value) == info.value.message
    return info.value


# --------------------------------------------------------------------------- the examples


@pytest.mark.parametrize(
    ("text", "type_", "fields", "expected"),
    [
        (
            'purchase.amount >= 50 and customer.tier == "gold"',
            ExprType.BOOL,
            {"purchase.amount", "customer.tier"},
            [False, False, True, False],
        ),
        (
            'customer.category_purchases["shirts"] >= 5',
            ExprType.BOOL,
            {"customer.category_purchases"},
            [False, True, True, False],
        ),
        (
            "days_since(customer.last_purchase) > 60",
            ExprType.BOOL,
            {"customer.last_purchase", "now"},
            [True, False, True, False],
        ),
        ("floor(purchase.amount) * 2", ExprType.NUMBER, {"purchase.amount"}, [20.0, 100.0, 150.0, -6.0]),
        ("0 < purchase.amount <= 50", ExprType.BOOL, {"purchase.amount"}, [True, True, False, False]),
        ('customer.tier in ["gold", "silver"]', ExprType.BOOL, {"customer.tier"}, [False, True, True, True]),
        ('customer.tier not in ("gold",)', ExprType.BOOL, {"customer.tier"}, [True, True, False, False]),
        ('"gold" == customer.tier', ExprType.BOOL, {"customer.tier"}, [False, False, True, True]),
        (
            "customer.tier == customer.segment",
            ExprType.BOOL,
            {"customer.tier", "customer.segment"},
            [False, False, True, True],
        ),
        ('store.region != "süd"', ExprType.BOOL, {"store.region"}, [False, True, True, False]),
        ("not purchase.on_credit or false", ExprType.BOOL, {"purchase.on_credit"}, [False, True, False, True]),
        ("purchase.on_credit == True", ExprType.BOOL, {"purchase.on_credit"}, [True, False, True, False]),
        ("if_else(purchase.on_credit, 1, 2)", ExprType.NUMBER, {"purchase.on_credit"}, [1.0, 2.0, 1.0, 2.0]),
        (
            "purchase.amount if purchase.on_credit else -1",
            ExprType.NUMBER,
            {"purchase.amount", "purchase.on_credit"},
            [10.0, -1.0, 75.5, -1.0],
        ),
        ("min(20, purchase.amount, 60)", ExprType.NUMBER, {"purchase.amount"}, [10.0, 20.0, 20.0, -3.0]),
        ("max(purchase.amount, 0)", ExprType.NUMBER, {"purchase.amount"}, [10.0, 50.0, 75.5, 0.0]),
        ("clip(purchase.amount, 0, 60)", ExprType.NUMBER, {"purchase.amount"}, [10.0, 50.0, 60.0, 0.0]),
        ("ceil(purchase.amount / 20)", ExprType.NUMBER, {"purchase.amount"}, [1.0, 3.0, 4.0, -0.0]),
        ("abs(purchase.amount) ** 2", ExprType.NUMBER, {"purchase.amount"}, [100.0, 2500.0, 5700.25, 9.0]),
        ("sqrt(purchase.amount)", ExprType.NUMBER, {"purchase.amount"}, [10**0.5, 50**0.5, 75.5**0.5, 0.0]),
        ("log(purchase.amount)", ExprType.NUMBER, {"purchase.amount"}, list(np.log([10.0, 50.0, 75.5])) + [0.0]),
        ("purchase.amount ** 0.5", ExprType.NUMBER, {"purchase.amount"}, [10**0.5, 50**0.5, 75.5**0.5, 0.0]),
        ("2 * 3 + 1", ExprType.NUMBER, set(), [7.0] * 4),
        ("true", ExprType.BOOL, set(), [True] * 4),
        ("  purchase.amount\n", ExprType.NUMBER, {"purchase.amount"}, [10.0, 50.0, 75.5, -3.0]),
        ("(purchase.amount +\n 1)", ExprType.NUMBER, {"purchase.amount"}, [11.0, 51.0, 76.5, -2.0]),
    ],
)
def test_examples_compile_typed_and_evaluate(
    text: str, type_: ExprType, fields: set[str], expected: list[object]
) -> None:
    compiled = compile_expression(text, SCHEMA)
    assert compiled.type is type_
    assert compiled.fields == frozenset(fields)
    out = compiled.evaluate(ENV, N)
    assert out.shape == (N,)
    assert out.dtype == (np.float64 if type_ is ExprType.NUMBER else np.bool_)
    np.testing.assert_allclose(out, np.array(expected, dtype=out.dtype), rtol=1e-15)


def test_division_and_modulo_by_zero_give_zero_without_warnings() -> None:
    env = dict(ENV, **{"purchase.amount": np.array([7.0, -7.0, 0.0, 3.5])})
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        for op in ("/", "//", "%"):
            np.testing.assert_array_equal(run(f"purchase.amount {op} 0", env), [0.0] * 4)
        out = run("log(purchase.amount - 7) + sqrt(-purchase.amount) + (purchase.amount - 7) ** 0.5", env)
    assert np.all(np.isfinite(out))


def test_floor_division_and_modulo_follow_python_for_nonzero_divisors() -> None:
    env = dict(ENV, **{"purchase.amount": np.array([-7.0, 7.0, 7.5, -7.5])})
    for divisor in (2, -2, 0.5):
        quotient = run(f"purchase.amount // {divisor}", env)
        remainder = run(f"purchase.amount % {divisor}", env)
        for x, q, r in zip([-7.0, 7.0, 7.5, -7.5], quotient, remainder, strict=True):
            assert (q, r) == (x // divisor, x % divisor)


def test_round_is_half_away_from_zero() -> None:
    values = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.49999999999999994, -0.4])
    env = dict(ENV, **{"purchase.amount": values})
    out = run("round(purchase.amount)", env, n=len(values))
    np.testing.assert_array_equal(out, [-3.0, -2.0, -1.0, 1.0, 2.0, 3.0, 0.0, 0.0])


def test_scalars_broadcast_and_results_never_alias_inputs() -> None:
    env = dict(ENV, **{"purchase.amount": 12.5, "customer.tier": 2})
    np.testing.assert_array_equal(run('purchase.amount + if_else(customer.tier == "gold", 1, 0)', env), [13.5] * N)
    amounts = np.array([1.0, 2.0, 3.0, 4.0])
    env = dict(ENV, **{"purchase.amount": amounts})
    for text in ("purchase.amount", "+purchase.amount", 'customer.category_purchases["shoes"]'):
        out = run(text, env)
        out[:] = -99.0
    np.testing.assert_array_equal(amounts, [1.0, 2.0, 3.0, 4.0])
    maps = ENV["customer.category_purchases"]
    np.testing.assert_array_equal(maps[:, 2], [3.0, 0.0, 1.0, 0.0])  # type: ignore[index]
    assert run("1 + 1", n=0).shape == (0,)


def test_expect_enforces_the_result_type_with_a_hint() -> None:
    err = error_of("purchase.amount", expect=ExprType.BOOL)
    assert err.message == "expected a condition (true/false), got a number; did you mean 'purchase.amount > 0'?"
    err = error_of("purchase.amount > 1", expect=ExprType.NUMBER)
    assert "expected a number" in err.message and "if_else(purchase.amount > 1, 1, 0)" in err.message
    assert compile_expression("purchase.amount > 1", SCHEMA, expect=ExprType.BOOL).type is ExprType.BOOL
    err = error_of("customer.tier")
    assert 'customer.tier == "member"' in err.message
    err = error_of("customer.category_purchases", expect=ExprType.NUMBER)
    assert 'customer.category_purchases["shirts"]' in err.message


def test_compiled_and_errors_survive_pickling() -> None:
    compiled = compile_expression("days_since(customer.last_purchase) * 2", SCHEMA)
    clone = pickle.loads(pickle.dumps(compiled))
    assert isinstance(clone, Compiled) and clone == compiled
    np.testing.assert_array_equal(clone.evaluate(ENV, N), compiled.evaluate(ENV, N))
    err = pickle.loads(pickle.dumps(ExpressionError("bad", 7)))
    assert (err.message, err.offset) == ("bad", 7)


def test_evaluate_reports_missing_or_malformed_inputs() -> None:
    compiled = compile_expression('customer.category_purchases["shoes"] > purchase.amount', SCHEMA)
    with pytest.raises(ValueError, match="purchase.amount"):
        compiled.evaluate({"customer.category_purchases": np.zeros((N, 3))}, N)
    with pytest.raises(ValueError, match="shape"):
        compiled.evaluate({"customer.category_purchases": np.zeros((N, 2)), "purchase.amount": 1.0}, N)
    with pytest.raises(ValueError, match="shape"):
        compiled.evaluate({"customer.category_purchases": np.zeros((N, 3)), "purchase.amount": np.ones(N + 1)}, N)
    with pytest.raises(ValueError, match="integer codes"):
        compile_expression('customer.tier == "gold"', SCHEMA).evaluate({"customer.tier": np.array(["gold"])}, 1)


def test_field_declarations_are_validated() -> None:
    with pytest.raises(ValueError):
        Field(ExprType.ENUM)
    with pytest.raises(ValueError):
        Field(ExprType.MAP, ("a", "a"))
    with pytest.raises(ValueError):
        Field(ExprType.NUMBER, ("a",))
    assert Field(ExprType.ENUM, ["a", "b"]).values == ("a", "b")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- errors


def at(text: str, token: str) -> int:
    return text.index(token)


@pytest.mark.parametrize(
    ("text", "token", "message"),
    [
        # unknown names, keys, enum values, functions
        ('customer.teir == "gold"', "teir", "unknown field 'customer.teir'; did you mean 'customer.tier'?"),
        ("amount > 3", "amount", "unknown field 'amount'; did you mean 'purchase.amount'?"),
        ("customer", "customer", "'customer' is not a field by itself"),
        (
            "customer.category_purchases.shirts > 1",
            "shirts",
            "did you mean 'customer.category_purchases[\"shirts\"]'?",
        ),
        (
            'customer.category_purchases["shrts"] >= 1',
            '"shrts"',
            "unknown key 'shrts' for customer.category_purchases; did you mean 'shirts'?",
        ),
        ('customer.tier == "gld"', '"gld"', "unknown value 'gld' for customer.tier; did you mean 'gold'?"),
        ('customer.tier in ["gold", "silvr"]', '"silvr"', "did you mean 'silver'?"),
        ("floor(1, 2)", "floor", "floor() takes 1 argument, got 2"),
        ("clip(1, 2)", "clip", "clip() takes 3 arguments, got 2"),
        ("min(purchase.amount)", "min", "min() takes 2 to 8 arguments, got 1"),
        ("purchase.amount + flor(2)", "flor", "unknown function 'flor'; did you mean 'floor'?"),
        ("now() > 1", "now", "'now' is a value, not a function"),
        ("floor(x=1)", "x=", "takes no keyword arguments"),
        # type mismatches
        ("purchase.amount and true", "purchase", "'and' needs a condition (true/false), got a number"),
        ("true or purchase.amount", "purchase", "did you mean 'purchase.amount > 0'?"),
        ("not purchase.amount", "purchase", "'not' needs a condition"),
        ('customer.tier < "gold"', "<", "category field customer.tier can only be compared with '=='"),
        ("customer.tier == 1", "==", "cannot compare the category customer.tier with a number"),
        ("customer.tier == customer.channel", "==", "they take different values"),
        ('customer.tier in "gold"', '"gold"', "write a list of values in brackets"),
        ("purchase.amount in [1, 2]", "purchase", "'in' works only on a category field"),
        ("purchase.on_credit + 1", "purchase", "did you mean 'if_else(purchase.on_credit, 1, 0)'?"),
        ("customer.category_purchases > 1", "customer", 'customer.category_purchases["shirts"]'),
        ('purchase.amount == "gold"', '"gold"', "can only be compared with a category field"),
        ('"gold" + 1', '"gold"', "'+' needs a number, got the text 'gold'"),
        ("1 if purchase.on_credit else customer.tier", "customer", "must have the same type"),
        ("if_else(purchase.amount, 1, 2)", "purchase", "if_else() argument 1 needs a condition"),
        ("days_since(customer.tier)", "customer", "days_since() argument 1 needs a number"),
        ("purchase.amount[0]", "[", "only map fields such as customer.category_purchases can be indexed"),
        ("customer.category_purchases[0] > 1", "0", "must be written as text"),
        ("[1] == 1", "[", "a list of values is only allowed after 'in'"),
        # forbidden constructs
        ("1 + (lambda: 1)", "lambda", "'lambda' is not allowed in a policy expression"),
        ('__import__("os")', "__import__", "'__import__' is not allowed in a policy expression"),
        ("customer.__class__", "__class__", "'__class__' is not allowed in a policy expression"),
        ("purchase.amount.__class__.__bases__", "__class__", "'__class__' is not allowed"),
        ("[x for x in purchase.amount]", "[", "a list comprehension is not allowed"),
        ("sum(x for x in y)", "sum", "unknown function 'sum'"),
        ("floor(x for x in y)", "(x for", "a generator expression is not allowed"),
        ("purchase.amount ** 5", "5", "'**' needs a constant exponent between 0 and 4"),
        ("purchase.amount ** now", "now", "'**' needs a constant exponent"),
        ("2 ** -1", "-1", "'**' needs a constant exponent"),
        ("purchase.amount & 1", "&", "'&' is not allowed in a policy expression; did you mean 'and'?"),
        ("~purchase.on_credit", "~", "did you mean 'not'?"),
        ("purchase.amount is 1", "is", "'is' is not allowed in a policy expression; did you mean '=='?"),
        ('"abc".upper()', "upper", "method calls are not allowed"),
        ("floor(1).real", ".real", "not on a function call"),
        ("floor(*purchase.amount)", "*", "unpacking with '*' is not allowed"),
        ("(y := 1)", "y", "an assignment expression (':=') is not allowed"),
        ('f"{purchase.amount}"', "f", "an f-string is not allowed"),
        ('b"x" == customer.tier', "b", "a bytes literal is not allowed"),
        ("2j", "2j", "a complex number is not allowed"),
        ("None", "None", "'None' is not allowed"),
        ("{1: 2}", "{", "a dict literal"),
        ("{1}", "{", "a set literal"),
        ("customer.category_purchases[0:1]", "0", "a slice (':') is not allowed"),
        ("1e13", "1e13", "too large"),
        ("1e999 > 1", "1e999", "too large"),
        # syntax
        ("purchase.amount >", None, "invalid syntax"),
        ("customer.points['points'] >=", None, "ends with '>=', which needs a number or a field after it"),
        ("purchase.amount > 5 and", None, "ends with 'and', which needs a condition after it"),
        ("purchase.amount * 2 +  ", None, "ends with '+', which needs a number or a field after it"),
        ("customer.tier in", None, "ends with 'in', which needs a list such as ['gold', 'silver'] after it"),
        ("purchase.amount =>", "=>", "use '==' to compare"),  # not "ends with '>'"
        ("purchase.amount = 5", "=", "use '==' to compare"),
        ("purchase.on_credit && true", "& true", "use 'and' instead of '&&'"),
        ("purchase.amount\n+ 1", "+", "wrap it in parentheses"),
        ("", None, "the expression is empty"),
        ("1 +\x00", "\x00", "NUL character"),
        ("1and purchase.on_credit", "1", "invalid decimal literal"),
    ],
)
def test_errors_name_the_problem_and_point_at_it(text: str, token: str | None, message: str) -> None:
    err = error_of(text)
    assert message in err.message
    expected = len(text) if token is None and text else (at(text, token) if token is not None else 0)
    assert err.offset == expected, (err.offset, expected, err.message)


def test_days_since_needs_a_now_field() -> None:
    err = error_of("days_since(customer.last_purchase) > 60", NO_NOW)
    assert "needs a number field 'now'" in err.message and err.offset == 0


def test_offsets_are_characters_in_the_whole_text() -> None:
    text = '"süd" == store.region and customer.teir == "gold"'
    assert error_of(text).offset == text.index("teir")
    text = '(purchase.amount > 1 and\n   customer.teir == "gold")'
    assert error_of(text).offset == text.index("teir")
    text = '   \n  customer.teir == "gold"'
    assert error_of(text).offset == text.index("teir")


@pytest.mark.parametrize(
    "text",
    [
        "(" * 100_000,
        "1+" * 5000 + "1",
        "-" * 200_000 + "1",
        "not " * 100_000 + "true",
        "-" * (MAX_TEXT_LENGTH - 1) + "1",
        "not " * ((MAX_TEXT_LENGTH - 4) // 4) + "true",
        "(" * 40 + "1" + ")" * 40,
        "[" * 1000,
        "1" + "+1" * 40,
        "floor(" * 33 + "1" + ")" * 33,
        "purchase.amount" + "[1]" * 600,
        "a." * 999 + "b",
        "min(" + ", ".join(["x.y"] * 200) + ")",
        " or ".join(["true"] * 240) + " or " + " or ".join(["x.y"] * 10),
        "x" * (MAX_TEXT_LENGTH + 1),
    ],
)
def test_bombs_are_rejected_with_bounded_work(text: str) -> None:
    """The work is counted, not timed (tests.conftest.traced_work); the largest of these cases takes about
    33,000 trace events."""
    err, events = traced_work(lambda: error_of(text))
    assert events < 100_000
    assert 0 <= err.offset <= len(text)
    assert any(w in err.message for w in ("too long", "too deeply", "too large", "too complex"))


# --------------------------------------------------------------------------- properties

TOKENS = [
    "purchase.amount", "customer.tier", "customer.category_purchases", '["shirts"]', "now", "purchase.on_credit",
    "customer.last_purchase", "customer", ".", "__class__", "(", ")", "[", "]", ",", "+", "-", "*", "/", "//",
    "%", "**", "<", "<=", "==", "!=", ">", "and", "or", "not", "in", "if", "else", "lambda", ":", "1", "0", "4",
    "2.5", "1e12", '"gold"', '"silver"', "true", "false", "floor", "min", "clip", "days_since", "if_else", "log",
    "round", "sqrt", "x", "=", "&", "|", "~", "is", "None", "{", "}", "'", '"', "#", "\n", "\\", "for",
]

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def full_env(n: int) -> dict[str, object]:
    return {
        "customer.tier": np.arange(n) % 3,
        "customer.segment": 1,
        "customer.channel": np.arange(n) % 2,
        "customer.category_purchases": np.arange(3 * n, dtype=float).reshape(n, 3),
        "customer.last_purchase": np.linspace(-5.0, 50.0, n),
        "purchase.amount": np.linspace(-20.0, 120.0, n),
        "purchase.on_credit": np.arange(n) % 2 == 0,
        "store.region": 0,
        "now": 60.0,
    }


def check_anything(text: str) -> None:
    try:
        compiled = compile_expression(text, SCHEMA)
    except ExpressionError as err:
        assert isinstance(err.message, str) and err.message
        assert 0 <= err.offset <= len(text)
        return
    out = compiled.evaluate(full_env(5), 5)
    assert out.shape == (5,) and out.dtype in (np.float64, np.bool_)


@pytest.mark.filterwarnings("error")
@FAST
@given(st.text(max_size=200))
def test_arbitrary_text_only_ever_raises_expression_error(text: str) -> None:
    check_anything(text)


@pytest.mark.filterwarnings("error")
@FAST
@given(st.lists(st.sampled_from(TOKENS), max_size=25), st.sampled_from([" ", ""]))
def test_token_soup_only_ever_raises_expression_error(tokens: list[str], sep: str) -> None:
    check_anything(sep.join(tokens))


NUMBER_LEAVES = st.one_of(
    st.sampled_from(["purchase.amount", "customer.last_purchase", "now", "days_since(customer.last_purchase)"]),
    st.sampled_from(CATEGORIES).map(lambda k: f'customer.category_purchases["{k}"]'),
    st.integers(-100, 100).map(str),
    st.integers(-4000, 4000).map(lambda v: repr(v / 40)),
)
CONDITION_LEAVES = st.one_of(
    st.sampled_from(["purchase.on_credit", "true", "false", "True", "False", "customer.tier == customer.segment"]),
    st.tuples(st.sampled_from(["==", "!="]), st.sampled_from(TIERS)).map(lambda t: f'customer.tier {t[0]} "{t[1]}"'),
    st.tuples(st.sampled_from(["in", "not in"]), st.lists(st.sampled_from(TIERS), min_size=1, max_size=3)).map(
        lambda t: f"customer.tier {t[0]} [{', '.join(repr(v) for v in t[1])}]"
    ),
)
COMPARE = st.sampled_from(["<", "<=", ">", ">=", "==", "!="])


@functools.cache
def numbers(depth: int) -> st.SearchStrategy[str]:
    """Well-typed number expressions at most `depth` operators deep."""
    if depth == 0:
        return NUMBER_LEAVES
    sub, cond = numbers(depth - 1), conditions(depth - 1)
    return st.one_of(
        NUMBER_LEAVES,
        st.tuples(sub, st.sampled_from(["+", "-", "*", "/", "//", "%"]), sub).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        sub.map(lambda a: f"(-{a})"),
        st.tuples(sub, st.sampled_from(["0", "1", "2", "0.5"])).map(lambda t: f"({t[0]}) ** {t[1]}"),
        st.tuples(st.sampled_from(["floor", "ceil", "round", "abs", "sqrt", "log"]), sub).map(
            lambda t: f"{t[0]}({t[1]})"
        ),
        st.tuples(st.sampled_from(["min", "max"]), st.lists(sub, min_size=2, max_size=3)).map(
            lambda t: f"{t[0]}({', '.join(t[1])})"
        ),
        st.tuples(sub, sub, sub).map(lambda t: f"clip({t[0]}, {t[1]}, {t[2]})"),
        st.tuples(cond, sub, sub).map(lambda t: f"if_else({t[0]}, {t[1]}, {t[2]})"),
        st.tuples(cond, sub, sub).map(lambda t: f"({t[1]} if {t[0]} else {t[2]})"),
    )


@functools.cache
def conditions(depth: int) -> st.SearchStrategy[str]:
    """Well-typed condition expressions at most `depth` operators deep."""
    if depth == 0:
        return CONDITION_LEAVES
    sub, num = conditions(depth - 1), numbers(depth - 1)
    return st.one_of(
        CONDITION_LEAVES,
        st.tuples(num, COMPARE, num).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(num, COMPARE, num, COMPARE, num).map(lambda t: "(" + " ".join(t) + ")"),
        st.tuples(sub, st.sampled_from(["and", "or"]), sub).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        sub.map(lambda a: f"(not {a})"),
        st.tuples(sub, sub, sub).map(lambda t: f"if_else({t[0]}, {t[1]}, {t[2]})"),
    )


EXPRESSIONS = st.one_of(numbers(3), conditions(3))
QUARTERS = st.integers(-1600, 1600).map(lambda v: v / 4)


@st.composite
def environments(draw: st.DrawFn) -> tuple[dict[str, object], int]:
    """A random batch: each field either a per-row array or a scalar for all rows."""
    n = draw(st.integers(1, 8))

    def column(values: st.SearchStrategy[object], dtype: type) -> object:
        if draw(st.booleans()):
            return draw(values)
        return np.array(draw(st.lists(values, min_size=n, max_size=n)), dtype=dtype)

    env: dict[str, object] = {
        "customer.tier": column(st.integers(0, 2), np.int64),
        "customer.segment": column(st.integers(0, 2), np.int64),
        "customer.channel": column(st.integers(0, 1), np.int64),
        "store.region": column(st.integers(0, 1), np.int64),
        "customer.last_purchase": column(QUARTERS, np.float64),
        "purchase.amount": column(QUARTERS, np.float64),
        "purchase.on_credit": column(st.booleans(), np.bool_),
        "now": column(QUARTERS, np.float64),
        "customer.category_purchases": np.array(
            draw(st.lists(st.lists(QUARTERS, min_size=3, max_size=3), min_size=n, max_size=n)), dtype=np.float64
        ),
    }
    return env, n


@FAST
@given(EXPRESSIONS, environments())
def test_well_typed_expressions_compile_and_evaluate_to_finite_rows(
    text: str, env_n: tuple[dict[str, object], int]
) -> None:
    env, n = env_n
    compiled = compile_expression(text, SCHEMA)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = compiled.evaluate(env, n)
    assert out.shape == (n,)
    if compiled.type is ExprType.NUMBER:
        assert out.dtype == np.float64 and np.all(np.isfinite(out))
    else:
        assert out.dtype == np.bool_
    assert compiled.fields <= set(SCHEMA)


@FAST
@given(EXPRESSIONS, environments())
def test_each_row_alone_equals_that_row_in_the_batch(text: str, env_n: tuple[dict[str, object], int]) -> None:
    env, n = env_n
    compiled = compile_expression(text, SCHEMA)
    batch = compiled.evaluate(env, n)
    for i in range(n):
        row_env = {k: (v[i : i + 1] if isinstance(v, np.ndarray) else v) for k, v in env.items()}
        alone = compiled.evaluate(row_env, 1)
        assert alone.shape == (1,)
        assert np.array_equal(alone, batch[i : i + 1], equal_nan=True), (text, i, alone, batch[i])

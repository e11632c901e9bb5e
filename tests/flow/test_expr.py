"""Tests of the flow expression language (mlcycle.flow.expr) and the SQL helpers (mlcycle._sql).

Expressions are compiled to SQL, run in DuckDB over small pandas frames, and compared with the
same computation done independently in NumPy/pandas.
"""

from __future__ import annotations

import math
import pickle
import random
import struct
from collections.abc import Callable

import duckdb
import numpy as np
import pandas as pd
import pytest

from mlcycle._sql import quote_ident, sql_literal
from mlcycle.errors import SpecValidationError
from mlcycle.flow.expr import MAX_DEPTH, MAX_LENGTH, Expression, parse

# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


@pytest.fixture
def songs() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 40
    return pd.DataFrame(
        {
            "valence": rng.random(n),
            "liveness": rng.random(n),
            "energy": rng.random(n),
            "tempo": rng.uniform(60, 180, n),
            "Rating": rng.integers(1, 6, n),
            "genre": rng.choice(["Jazz", "Blues", "Rock", "Pop"], n),
        }
    )


@pytest.fixture
def numbers() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "a": np.array([7, -7, 7, -7, 0, 13, -1, 5], dtype="int64"),
            "b": np.array([2, 2, -2, -2, 3, 5, 3, 1], dtype="int64"),
            "x": [1.5, -2.25, np.nan, 0.0, 10.0, np.nan, -0.5, 3.0],
            "y": [0.5, 4.0, 1.0, np.nan, -3.0, 2.0, 0.25, 8.0],
            "s": ["Jazz", "blues", None, "it's", "ROCK", "Jazz", "", "pop"],
        }
    )


def _connect(df: pd.DataFrame) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.register("t", df)
    return con


def values(text: str, df: pd.DataFrame) -> list:
    """Run ``SELECT <expression> AS v FROM t`` and return the values (None for NULL)."""
    e = parse(text)
    con = _connect(df)
    return [row[0] for row in con.execute(f"SELECT {e.to_sql()} AS v FROM t").fetchall()]


def frame(text: str, df: pd.DataFrame) -> pd.Series:
    """Run ``SELECT <expression> AS v FROM t`` and return the result as a pandas Series."""
    e = parse(text)
    return _connect(df).execute(f"SELECT {e.to_sql()} AS v FROM t").df()["v"]


def where(text: str, df: pd.DataFrame) -> pd.DataFrame:
    """Run ``SELECT * FROM t WHERE <expression>`` (row order kept)."""
    e = parse(text)
    con = _connect(df)
    sql = f"SELECT * FROM (SELECT *, row_number() OVER () AS _rn FROM t) WHERE {e.to_sql()}"
    return con.execute(sql + " ORDER BY _rn").df().drop(columns="_rn")


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def strings(series: pd.Series) -> list[str | None]:
    """The values of a string column, None for missing (pandas gives NaN)."""
    return [None if _missing(v) else v for v in series]


def assert_same(actual: list, expected: list, *, rel: float = 1e-12) -> None:
    """Compare element-wise; None and NaN both mean missing; floats approximately."""
    expected = list(expected)
    assert len(actual) == len(expected), (actual, expected)
    for i, (got, want) in enumerate(zip(actual, expected, strict=True)):
        if _missing(want):
            assert _missing(got), (i, got, want)
        elif isinstance(want, float | np.floating) and not isinstance(want, bool):
            assert got is not None, (i, got, want)
            if math.isinf(want):
                assert got == want, (i, got, want)
            else:
                assert math.isclose(got, float(want), rel_tol=rel, abs_tol=1e-15), (i, got, want)
        else:
            assert got == want, (i, got, want)


def rejected(text: object) -> SpecValidationError:
    with pytest.raises(SpecValidationError) as info:
        parse(text)  # type: ignore[arg-type]
    assert info.value.field == "expression"
    return info.value


# --------------------------------------------------------------------------------------------
# evaluation against NumPy / pandas
# --------------------------------------------------------------------------------------------


def test_danceability_formula(songs: pd.DataFrame) -> None:
    text = "0.3*valence + 0.1*liveness + 0.1*energy + 0.5*(tempo - 60) / 120"
    expected = (
        0.3 * songs["valence"]
        + 0.1 * songs["liveness"]
        + 0.1 * songs["energy"]
        + 0.5 * (songs["tempo"] - 60) / 120
    )
    result = frame(text, songs)
    assert result.dtype == np.float64
    np.testing.assert_allclose(result.to_numpy(), expected.to_numpy(), rtol=1e-12)


def test_filter_rating_and_genre(songs: pd.DataFrame) -> None:
    text = "Rating == 5 and genre in ('Jazz', 'Blues')"
    expected = songs[(songs["Rating"] == 5) & songs["genre"].isin(["Jazz", "Blues"])]
    got = where(text, songs)
    assert got["Rating"].tolist() == expected["Rating"].tolist()
    assert got["genre"].tolist() == expected["genre"].tolist()
    np.testing.assert_array_equal(got["valence"].to_numpy(), expected["valence"].to_numpy())


def test_filter_not_in_and_or_precedence(songs: pd.DataFrame) -> None:
    text = "genre not in ['Rock'] and Rating >= 3 or energy > 0.9"
    mask = (~songs["genre"].isin(["Rock"]) & (songs["Rating"] >= 3)) | (songs["energy"] > 0.9)
    assert where(text, songs)["valence"].tolist() == songs[mask]["valence"].tolist()
    text = "genre not in ['Rock'] and (Rating >= 3 or energy > 0.9)"
    mask = ~songs["genre"].isin(["Rock"]) & ((songs["Rating"] >= 3) | (songs["energy"] > 0.9))
    assert where(text, songs)["valence"].tolist() == songs[mask]["valence"].tolist()


def test_true_division_of_integer_columns(numbers: pd.DataFrame) -> None:
    expected = numbers["a"].to_numpy() / numbers["b"].to_numpy()
    assert_same(values("a / b", numbers), expected.tolist())
    assert values("7 / 2", numbers)[0] == 3.5
    assert values("a / 0", numbers)[:2] == [math.inf, -math.inf]


def test_floor_division_like_python(numbers: pd.DataFrame) -> None:
    a, b = numbers["a"].to_numpy(), numbers["b"].to_numpy()
    assert_same(values("a // b", numbers), np.floor_divide(a, b).astype(float).tolist())
    x, y = numbers["x"].to_numpy(), numbers["y"].to_numpy()
    assert_same(values("x // y", numbers), np.floor_divide(x, y).tolist())
    assert values("-7 // 2", numbers)[0] == -4
    assert values("a // 0", numbers)[:2] == [math.inf, -math.inf]  # like pandas, not an error
    assert math.isnan(values("0 // 0", numbers)[0])


def test_float_floor_division_and_modulo_match_numpy_exactly() -> None:
    df = pd.DataFrame(
        {
            "p": [1.0, 0.3, 0.7, -1.0, 5.0, -5.0, 1e300, -1e-20, 2.5, 7.0, 0.0],
            "q": [0.1, 0.1, 0.1, 0.1, np.inf, np.inf, 3.0, 3.0, -0.5, 0.0, 0.0],
        }
    )
    p, q = df["p"].to_numpy(), df["q"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        floor_div = np.floor_divide(p, q)
    assert values("p // q", df) == pytest.approx(floor_div.tolist(), nan_ok=True, rel=0, abs=0)
    assert values("1 // 0.1", df)[0] == 1 // 0.1 == 9.0  # floor(1 / 0.1) would be 10
    got_mod = values("p % q", df)
    want_mod = np.mod(p[q != 0], q[q != 0]).tolist()
    assert [v for v, d in zip(got_mod, q, strict=True) if d != 0] == want_mod
    assert [v for v, d in zip(got_mod, q, strict=True) if d == 0] == [None, None]


def test_modulo_like_python(numbers: pd.DataFrame) -> None:
    a, b = numbers["a"].to_numpy(), numbers["b"].to_numpy()
    got = values("a % b", numbers)
    assert got == np.mod(a, b).tolist()
    assert all(type(v) is int for v in got)  # integer operands stay integers
    x, y = numbers["x"].to_numpy(), numbers["y"].to_numpy()
    assert_same(values("x % y", numbers), np.mod(x, y).tolist())
    assert values("a % 0", numbers) == [None] * len(numbers)  # not a division error
    assert values("-7 % 3", numbers)[0] == 2
    assert values("7 % -3", numbers)[0] == -2
    assert values("-7.5 % 2", numbers)[0] == 0.5
    # Python's invariant a == b * (a // b) + a % b holds
    assert values("b * (a // b) + a % b - a", numbers) == [0.0] * len(numbers)


def test_power_is_right_associative(numbers: pd.DataFrame) -> None:
    assert values("2 ** 3 ** 2", numbers)[0] == 512
    assert values("-2 ** 2", numbers)[0] == -4
    assert values("2 ** -1", numbers)[0] == 0.5
    assert_same(values("y ** 2", numbers), (numbers["y"] ** 2).tolist())


def test_unary_and_negative_literals_do_not_form_comments(numbers: pd.DataFrame) -> None:
    assert_same(values("x - -1", numbers), (numbers["x"] + 1).tolist())
    assert_same(values("x--1", numbers), (numbers["x"] + 1).tolist())
    assert_same(values("-x", numbers), (-numbers["x"]).tolist())
    assert_same(values("+x", numbers), numbers["x"].tolist())
    assert values("- - 5", numbers)[0] == 5
    assert values("x * -1.5e-3", numbers)[0] == pytest.approx(1.5 * -1.5e-3)
    sql = parse("a - -1").to_sql()
    assert "--" not in sql


def test_comparisons_and_chains(numbers: pd.DataFrame) -> None:
    x = numbers["x"]
    expected = [None if math.isnan(v) else bool(0 <= v < 5) for v in x]
    assert values("0 <= x < 5", numbers) == expected
    assert values("a != b", numbers) == (numbers["a"] != numbers["b"]).tolist()
    assert values("a > b >= 2", numbers) == [
        bool(a > b >= 2) for a, b in zip(numbers["a"], numbers["b"], strict=True)
    ]
    assert values("s == 'Jazz'", numbers) == [
        None if v is None else v == "Jazz" for v in strings(numbers["s"])
    ]


def test_in_lists(numbers: pd.DataFrame) -> None:
    assert values("a in (7, 13, -1)", numbers) == numbers["a"].isin([7, 13, -1]).tolist()
    assert values("a not in {7, 13}", numbers) == (~numbers["a"].isin([7, 13])).tolist()
    expected = [True, False, False, None, False, True, False, True]
    assert values("y in [0.5, 2.0, 8]", numbers) == expected
    assert values("a in ()", numbers) == [False] * len(numbers)
    assert values("a not in ()", numbers) == [True] * len(numbers)


def test_null_handling(numbers: pd.DataFrame) -> None:
    x = numbers["x"]
    assert values("x is None", numbers) == x.isna().tolist()
    assert values("x is not None", numbers) == x.notna().tolist()
    assert values("None is x", numbers) == x.isna().tolist()
    assert values("isnull(x)", numbers) == x.isna().tolist()
    assert values("isna(s)", numbers) == numbers["s"].isna().tolist()
    assert values("notnull(x)", numbers) == x.notna().tolist()
    assert_same(values("coalesce(x, y, 0)", numbers), x.fillna(numbers["y"]).fillna(0).tolist())
    # arithmetic propagates missing values like pandas does with NaN
    assert_same(values("x + y", numbers), (x + numbers["y"]).tolist())
    # a comparison with a missing value is NULL, which a filter treats as false
    assert len(where("x > 0", numbers)) == int((x > 0).sum())
    assert len(where("not (x > 0)", numbers)) == int((x <= 0).sum())
    assert len(where("not (x > 0) or x is None", numbers)) == int((~(x > 0)).sum())


def test_conditional(numbers: pd.DataFrame) -> None:
    expected = np.where(numbers["a"] > 0, numbers["a"] * 10, -1)
    assert values("a * 10 if a > 0 else -1", numbers) == expected.tolist()
    got = values("'big' if a > 5 else 'mid' if a > 0 else 'small'", numbers)
    assert got == ["big" if a > 5 else "mid" if a > 0 else "small" for a in numbers["a"]]
    # a NULL condition takes the else branch, like a NaN comparison in NumPy
    assert_same(values("1 if x > 0 else 0", numbers), (numbers["x"] > 0).astype(int).tolist())


def test_booleans_count_as_numbers_in_arithmetic(numbers: pd.DataFrame) -> None:
    expected = (numbers["a"] > 0).astype(int) * 2 + (numbers["b"] < 0).astype(int)
    assert values("(a > 0) * 2 + (b < 0)", numbers) == expected.tolist()
    assert values("True + True", numbers)[0] == 2


@pytest.mark.parametrize(
    ("text", "compute"),
    [
        ("abs(x)", lambda d: np.abs(d["x"])),
        ("sqrt(abs(y))", lambda d: np.sqrt(np.abs(d["y"]))),
        ("exp(x)", lambda d: np.exp(d["x"])),
        ("log(abs(y))", lambda d: np.log(np.abs(d["y"]))),
        ("log10(abs(y))", lambda d: np.log10(np.abs(d["y"]))),
        ("log(abs(y), 2)", lambda d: np.log2(np.abs(d["y"]))),
        ("floor(x)", lambda d: np.floor(d["x"])),
        ("ceil(x)", lambda d: np.ceil(d["x"])),
        ("round(x * 1.1, 2)", lambda d: np.round(d["x"] * 1.1, 2)),
        ("round(a * 1000, -2)", lambda d: np.round(d["a"] * 1000, -2).astype(float)),
        ("min(x, y)", lambda d: d[["x", "y"]].min(axis=1)),
        ("least(x, y, 1)", lambda d: d[["x", "y"]].assign(one=1.0).min(axis=1)),
        ("max(x, y)", lambda d: d[["x", "y"]].max(axis=1)),
        ("greatest(a, b)", lambda d: np.maximum(d["a"], d["b"]).astype(float)),
        ("clip(x, -1, 2)", lambda d: d["x"].clip(-1, 2)),
        ("clip(y, 0, None)", lambda d: d["y"].clip(lower=0)),
        ("cast(x, 'int')", lambda d: np.rint(d["x"])),
        ("cast(a, 'float') / 2", lambda d: d["a"] / 2),
    ],
)
def test_numeric_functions(numbers: pd.DataFrame, text: str, compute: Callable) -> None:
    assert_same(values(text, numbers), pd.Series(compute(numbers)).astype(float).tolist())


def test_string_functions(numbers: pd.DataFrame) -> None:
    s = strings(numbers["s"])
    assert values("lower(s)", numbers) == [None if v is None else v.lower() for v in s]
    assert values("upper(s)", numbers) == [None if v is None else v.upper() for v in s]
    assert values("length(s)", numbers) == [None if v is None else len(v) for v in s]
    assert values("lower(s) == 'jazz'", numbers) == [
        None if v is None else v.lower() == "jazz" for v in s
    ]
    assert values("cast(a, 'string')", numbers) == [str(v) for v in numbers["a"]]
    assert values("cast(a > 0, 'string')", numbers)[:2] == ["true", "false"]
    assert values("cast(cast(a, 'string'), 'int') == a", numbers) == [True] * len(numbers)
    assert values("cast(a, 'bool')", numbers) == [bool(v) for v in numbers["a"]]
    assert values("coalesce(s, 'missing')", numbers) == ["missing" if v is None else v for v in s]


def test_round_rounds_halves_away_from_zero(numbers: pd.DataFrame) -> None:
    # documented difference from Python's round() (which rounds halves to even)
    assert values("round(2.5)", numbers)[0] == 3
    assert values("round(-2.5)", numbers)[0] == -3


def test_string_literals_are_escaped(numbers: pd.DataFrame) -> None:
    assert values('s == "it\'s"', numbers) == [
        None if v is None else v == "it's" for v in strings(numbers["s"])
    ]
    assert values(r"s == 'it\'s'", numbers)[3] is True
    # an injection attempt inside a string literal stays a string
    attack = 's == "\'; DROP TABLE t; --"'
    assert values(attack, numbers) == [None if v is None else False for v in strings(numbers["s"])]
    assert values("'a`b' == 'a`b'", numbers)[0] is True  # backticks in strings are text
    assert values("'''triple `x` quoted''' == 'triple `x` quoted'", numbers)[0] is True
    assert values("'héllo ✓'", numbers)[0] == "héllo ✓"
    assert values("'a' 'b'", numbers)[0] == "ab"


def test_backtick_and_odd_column_names() -> None:
    df = pd.DataFrame(
        {
            "my col": [1.0, 2.0, 3.0],
            "select": [10, 20, 30],
            'we"ird': [1, 0, 1],
            "a`b": [5, 6, 7],
            'a"; DROP TABLE t; --': [100, 200, 300],
            "from": ["x", "y", "z"],
        }
    )
    assert values("`my col` * 2", df) == [2.0, 4.0, 6.0]
    assert values("select + 1", df) == [11, 21, 31]  # a bare keyword of SQL is just a column
    assert values("`select` + `my col`", df) == [11.0, 22.0, 33.0]
    assert values('`we"ird` == 1', df) == [True, False, True]
    assert values("`a``b` - 5", df) == [0, 1, 2]
    assert values('`a"; DROP TABLE t; --` // 100', df) == [1.0, 2.0, 3.0]
    assert values("upper(`from`)", df) == ["X", "Y", "Z"]
    e = parse('`a"; DROP TABLE t; --` + `my col`')
    assert e.columns == frozenset({'a"; DROP TABLE t; --', "my col"})
    assert '"a""; DROP TABLE t; --"' in e.to_sql()
    con = _connect(df)
    con.execute(f"SELECT {e.to_sql()} FROM t").fetchall()
    assert len(con.execute("SELECT * FROM t").fetchall()) == 3  # still there


def test_unicode_identifiers_are_kept_as_written() -> None:
    # Python would NFKC-normalize the name (the ligature becomes "fi"); the column is as written
    e = parse("ﬁeld + café")
    assert e.columns == frozenset({"ﬁeld", "café"})
    df = pd.DataFrame({"ﬁeld": [1, 2], "café": [10, 20]})
    assert values("ﬁeld + café", df) == [11, 22]


def test_multiline_expression_with_comments(songs: pd.DataFrame) -> None:
    text = """
        0.5 * valence   # mood
        + 0.5 * energy  # drive
    """
    expected = 0.5 * songs["valence"] + 0.5 * songs["energy"]
    np.testing.assert_allclose(frame(text, songs).to_numpy(), expected.to_numpy())
    assert parse("a +\r\n b").columns == frozenset({"a", "b"})


def test_literals_are_exact(numbers: pd.DataFrame) -> None:
    assert values("0.1", numbers)[0] == 0.1
    assert values("0.30000000000000004", numbers)[0] == 0.30000000000000004
    assert values("0.1 + 0.2", numbers)[0] == 0.1 + 0.2  # doubles, as in Python
    assert values("1e300 * 10", numbers)[0] == 1e301
    assert values("1e400", numbers)[0] == math.inf
    assert values("9223372036854775807", numbers)[0] == 9223372036854775807
    assert values("-9223372036854775808", numbers)[0] == -9223372036854775808
    assert values("1_000_000 + 0x10", numbers)[0] == 1_000_016
    assert values("True", numbers)[0] is True
    assert values("None", numbers)[0] is None


def test_long_flat_sums_are_not_deep() -> None:
    text = " + ".join(f"c{i}" for i in range(3 * MAX_DEPTH))
    e = parse(text)
    assert len(e.columns) == 3 * MAX_DEPTH
    df = pd.DataFrame({f"c{i}": [i] for i in range(3 * MAX_DEPTH)})
    assert values(text, df) == [sum(range(3 * MAX_DEPTH))]
    assert len(parse(" and ".join(f"c{i} > 0" for i in range(300))).columns) == 300


def test_generated_sql_embeds_safely(numbers: pd.DataFrame) -> None:
    e = parse("a > 0 or b > 0")
    con = _connect(numbers)
    got = [r[0] for r in con.execute(f"SELECT NOT {e.to_sql()} FROM t").fetchall()]
    assert got == (~((numbers["a"] > 0) | (numbers["b"] > 0))).tolist()
    got = [r[0] for r in con.execute(f"SELECT {parse('a - b').to_sql()} * 2 FROM t").fetchall()]
    assert got == ((numbers["a"] - numbers["b"]) * 2).tolist()


# --------------------------------------------------------------------------------------------
# rejection
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("__import__('os').system('x')", "attribute access"),
        ("__import__('os')", "starting with '_'"),
        ("a.b", "attribute access"),
        ("a[0]", "subscript"),
        ("a[1:2]", "subscript"),
        ("lambda: 1", "lambda"),
        ("[x for x in y]", "comprehension"),
        ("{x: 1 for x in y}", "comprehension"),
        ("(x for x in y)", "generator"),
        ("f'{a}'", "f-string"),
        ("open('f')", "unknown function 'open'"),
        ("eval('1+1')", "unknown function 'eval'"),
        ("exec('x')", "unknown function 'exec'"),
        ("getattr(a, 'b')", "unknown function 'getattr'"),
        ("foo(1)", "unknown function 'foo'"),
        ("ABS(x)", "did you mean 'abs'"),
        ("_secret(1)", "starting with '_'"),
        ("`a`(1)", "cannot be called"),
        ("f(x)(y)", "only named functions"),
        ("a | b", "'|'"),
        ("a & b", "'&'"),
        ("a ^ b", "'^'"),
        ("~a", "'~'"),
        ("a << 2", "'<<'"),
        ("a @ b", "'@'"),
        ("(a := 1)", "':='"),
        ("abs(*a)", "starred"),
        ("round(x, ndigits=2)", "keyword arguments"),
        ("round(x, **k)", "keyword arguments"),
        ("round(x, n)", "integer literal"),
        ("sqrt()", "takes 1 argument"),
        ("clip(x, 1)", "takes 3 argument"),
        ("min(x)", "at least 2"),
        ("cast(x, 'date')", "unknown type 'date'"),
        ("cast(x, t)", "string literal"),
        ("b'x'", "bytes"),
        ("1j", "complex"),
        ("...", "Ellipsis"),
        ("{'a': 1}", "dict"),
        ("(1, 2)", "tuple"),
        ("[1, 2]", "list"),
        ("x in y", "tuple or list of literals"),
        ("x in 'abc'", "tuple or list of literals"),
        ("x in (a, b)", "must be literals"),
        ("x in (None, 1)", "is None"),
        ("x in (1, 'a')", "mixes a number with a string"),
        ("'a' in (1, 2)", "compares a string"),
        ("a == None", "is None"),
        ("None != a", "is not None"),
        ("a < None", "None"),
        ("a is 5", "only compare with None"),
        ("a is not b", "only compare with None"),
        ("'a' + 1", "string"),
        ("-'a'", "string"),
        ("None + 1", "None"),
        ("'a' < 1", "compares a string with a number"),
        ("not 5", "boolean"),
        ("a and 'x'", "boolean"),
        ("1 if 'c' else 2", "boolean"),
        ("1 if c else 'a'", "mixes"),
        ("lower(1)", "needs a string"),
        ("sqrt('x')", "string"),
        ("170141183460469231731687303715884105728", "out of range"),
        ("'\\x00'", "NUL"),
        ("x\x00", "NUL"),
        ("yield x", "yield"),
        ("await x", "await"),
        ("1 +", "syntax error"),
        ("a = 1", "syntax error"),
        ("a if b", "syntax error"),
        ("1 2", "syntax error"),
        ("`unterminated", "unterminated backtick"),
        ("``", "empty backtick"),
        ("'abc", "unterminated string"),
        ("a)", "unmatched ')'"),
        ("(a", "never closed"),
        ("", "empty"),
        ("   ", "empty"),
    ],
)
def test_rejected_expressions(text: str, fragment: str) -> None:
    error = rejected(text)
    assert fragment in str(error), str(error)


def test_big_constants_are_not_evaluated() -> None:
    assert parse("2 ** 200 + 10 ** 40").to_sql() == "(power(2, 200) + power(10, 40))"


def test_rejected_non_string() -> None:
    assert "must be a string" in str(rejected(5))
    assert "must be a string" in str(rejected(None))


def test_error_positions_point_into_the_original_text() -> None:
    assert "at position 11 ('a.b')" in str(rejected("`my col` + a.b"))
    assert "at position 8 ('$ + 1')" in str(rejected("é + ü + $ + 1"))
    assert "at position 4 ('$')" in str(rejected("a\n+ $"))
    assert "at position 19 ('foo')" in str(rejected("`x``y` + `z` * 2 + foo(1)"))
    assert "at the end" in str(rejected("a +"))


def test_too_deep() -> None:
    ok = "(" * (MAX_DEPTH - 1) + "x" + ")" * (MAX_DEPTH - 1)
    assert parse(ok).columns == {"x"}
    assert "nested" in str(rejected("(" * (MAX_DEPTH + 50) + "x" + ")" * (MAX_DEPTH + 50)))
    assert "nested" in str(rejected("abs(" * (MAX_DEPTH + 1) + "x" + ")" * (MAX_DEPTH + 1)))
    assert "nested" in str(rejected("not " * (MAX_DEPTH + 1) + "x"))
    assert "nested" in str(rejected("-" * (MAX_DEPTH + 1) + "x"))
    assert "nested" in str(rejected("**".join(["2"] * (MAX_DEPTH + 2))))
    # so deep that Python's own parser may give up first: still a SpecValidationError
    rejected("-" * (MAX_LENGTH - 1) + "x")
    try:  # a flat sum is not deep for us, but Python may find its syntax tree too deep
        assert parse("+".join(["a"] * (MAX_LENGTH // 2))).columns == {"a"}
    except SpecValidationError as error:
        assert error.field == "expression" and "too complex" in str(error)


def test_too_long() -> None:
    assert parse("a" * MAX_LENGTH).columns == {"a" * MAX_LENGTH}
    assert "longer than" in str(rejected("a" * (MAX_LENGTH + 1)))
    assert "longer than" in str(rejected("1 + " * MAX_LENGTH + "1"))


def test_sql_blowup_is_bounded() -> None:
    # % repeats its operands in the SQL; nesting it in the divisor grows the SQL exponentially
    text = "a"
    for name in "bcdefghijklmnop":
        text = f"{name} % ({text})"
    assert "characters of SQL" in str(rejected(text))


# --------------------------------------------------------------------------------------------
# the Expression object
# --------------------------------------------------------------------------------------------


def test_columns() -> None:
    e = parse("0.3*valence + 0.1*`live ness` + coalesce(energy, valence) if x > 0 else None")
    assert e.columns == frozenset({"valence", "live ness", "energy", "x"})
    assert parse("1 + 2").columns == frozenset()
    assert parse("abs(abs)").columns == frozenset({"abs"})  # a function name used as a column
    assert isinstance(e.columns, frozenset)


def test_check_columns() -> None:
    e = parse("Rating == 5 and genre in ('Jazz',) and temp > 1")
    e.check_columns(["Rating", "genre", "temp", "other"])
    e.check_columns(iter({"Rating", "genre", "temp"}))
    with pytest.raises(SpecValidationError) as info:
        e.check_columns(["rating", "genre", "tempo"])
    assert info.value.field == "expression"
    message = str(info.value)
    assert "'Rating'" in message and "'temp'" in message
    assert "did you mean 'rating'" in message
    assert "did you mean 'tempo'" in message
    assert "'genre'" not in message.split("available")[0]
    with pytest.raises(SpecValidationError, match="unknown column 'Rating'"):
        parse("Rating").check_columns([])


def test_expression_value_semantics() -> None:
    a, b = parse("a + 1"), Expression("a + 1")
    assert a == b and hash(a) == hash(b)
    assert a != parse("a+1")
    assert {a, b} == {a}
    assert Expression.parse("a + 1") == a
    assert parse(a) is a
    assert str(a) == "a + 1"
    assert repr(a) == "Expression(text='a + 1')"
    with pytest.raises(AttributeError):
        a.text = "b"  # type: ignore[misc]
    c = pickle.loads(pickle.dumps(a))
    assert c == a and c.to_sql() == a.to_sql() and c.columns == a.columns


def test_constructor_validates() -> None:
    with pytest.raises(SpecValidationError):
        Expression("a.b")


def test_result_type() -> None:
    assert parse("a > 1").result_type == "boolean"
    assert parse("a is None or b").result_type == "boolean"
    assert parse("a + 1").result_type == "number"
    assert parse("length(s)").result_type == "number"
    assert parse("lower(s)").result_type == "string"
    assert parse("'x' if a else 'y'").result_type == "string"
    assert parse("cast(a, 'bool')").result_type == "boolean"
    assert parse("a").result_type is None
    assert parse("coalesce(a, b)").result_type is None
    assert parse("None").result_type == "null"


def test_sql_shape() -> None:
    assert parse("Rating == 5 and genre in ('Jazz', 'Blues')").to_sql() == (
        "((\"Rating\" = 5) AND (\"genre\" IN ('Jazz', 'Blues')))"
    )
    assert parse("a / b").to_sql() == '(CAST("a" AS DOUBLE) / CAST("b" AS DOUBLE))'
    assert parse("log(x)").to_sql() == 'ln("x")'
    assert parse("clip(x, 0, 1)").to_sql() == (
        '(CASE WHEN "x" IS NULL THEN NULL ELSE least(greatest("x", 0), 1) END)'
    )
    assert parse("x if c else y").to_sql() == '(CASE WHEN "c" THEN "x" ELSE "y" END)'
    assert parse("True or False").to_sql() == "(TRUE OR FALSE)"


# --------------------------------------------------------------------------------------------
# quote_ident / sql_literal
# --------------------------------------------------------------------------------------------


def test_quote_ident() -> None:
    assert quote_ident("a") == '"a"'
    assert quote_ident("my col") == '"my col"'
    assert quote_ident("select") == '"select"'
    assert quote_ident('a"b') == '"a""b"'
    assert quote_ident('a"; DROP TABLE t; --') == '"a""; DROP TABLE t; --"'
    assert quote_ident("é✓") == '"é✓"'


@pytest.mark.parametrize("bad", ["", "a\x00b", "\ud800", 5, None])
def test_quote_ident_rejects(bad: object) -> None:
    with pytest.raises(SpecValidationError) as info:
        quote_ident(bad)  # type: ignore[arg-type]
    assert info.value.field == "name"


def test_quote_ident_injection_stays_one_identifier() -> None:
    names = ['a"; DROP TABLE t; --', 'x" FROM t; SELECT "1', "select", "--", "/*", "'", '"']
    df = pd.DataFrame({name: [i] for i, name in enumerate(names)})
    con = _connect(df)
    for i, name in enumerate(names):
        assert con.execute(f"SELECT {quote_ident(name)} FROM t").fetchall() == [(i,)]
    con.execute(f"CREATE TABLE {quote_ident(names[0])} AS SELECT 1 AS v")
    assert con.execute(f"SELECT v FROM {quote_ident(names[0])}").fetchall() == [(1,)]
    assert con.execute("SELECT count(*) FROM t").fetchall() == [(1,)]


def test_sql_literal_scalars() -> None:
    assert sql_literal(None) == "NULL"
    assert sql_literal(True) == "TRUE"
    assert sql_literal(False) == "FALSE"
    assert sql_literal(0) == "0"
    assert sql_literal(-5) == "(-5)"
    assert sql_literal(0.1) == "0.1e0"
    assert sql_literal(1e100) == "1e+100"
    assert sql_literal(float("nan")) == "'nan'::DOUBLE"
    assert sql_literal(float("inf")) == "'inf'::DOUBLE"
    assert sql_literal(float("-inf")) == "'-inf'::DOUBLE"
    assert sql_literal("it's") == "'it''s'"
    assert sql_literal(np.int64(3)) == "3"
    assert sql_literal(np.float32(0.5)) == "0.5e0"
    assert sql_literal(np.bool_(True)) == "TRUE"


def test_sql_literal_round_trips_through_duckdb() -> None:
    rng = random.Random(3)
    floats = [struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0] for _ in range(2000)] + [
        0.1,
        0.30000000000000004,
        5e-324,
        1.7976931348623157e308,
        -0.0,
        1e22,
        123456789.0,
    ]
    floats = [v for v in floats if not math.isnan(v)]
    ints = [0, 1, -1, 2**31, -(2**31) - 1, 2**63 - 1, -(2**63), 2**100, -(2**126)]
    strings = ["", "it's", "''", '"', "a'; DROP TABLE t; --", "\\", "é ✓ 中", "line\nbreak", "\t"]
    specials = [None, True, False, float("inf"), float("-inf")]
    items = floats + ints + strings + specials
    con = duckdb.connect()
    row = con.execute("SELECT " + ", ".join(sql_literal(v) for v in items)).fetchone()
    for value, got in zip(items, row, strict=True):
        assert got == value and type(got) is type(value), (value, got)
        if isinstance(value, float) and value == 0:
            assert math.copysign(1, got) == math.copysign(1, value)
    assert con.execute("SELECT isnan(" + sql_literal(float("nan")) + ")").fetchone() == (True,)
    # typed like Python: floats are DOUBLE, not DECIMAL
    assert con.execute(f"SELECT typeof({sql_literal(0.1)})").fetchone() == ("DOUBLE",)
    # a negative literal after a minus sign does not start a comment
    assert con.execute(f"SELECT 1 -{sql_literal(-1)}").fetchone() == (2,)


@pytest.mark.parametrize("bad", [b"x", object(), [1], complex(1, 2), "a\x00", "\udc80"])
def test_sql_literal_rejects(bad: object) -> None:
    with pytest.raises(SpecValidationError) as info:
        sql_literal(bad)
    assert info.value.field == "value"

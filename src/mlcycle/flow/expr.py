"""The safe expression language of data-prep flows.

A flow's ``formula`` step computes a column from an expression such as
``0.3*valence + 0.1*liveness + 0.1*energy``, and its ``filter`` step keeps the rows for which an
expression such as ``Rating == 5 and genre in ('Jazz', 'Blues')`` is true. This module turns
that text into DuckDB SQL that the flow engine embeds in ``SELECT ... FROM view``.

The text is never evaluated as Python. It is read with :func:`ast.parse` and the syntax tree is
converted, by a strict whitelist, into a small tree of our own frozen nodes, which is then
written out as SQL. Every column name goes through ``mlcycle._sql.quote_ident`` and every
literal through ``mlcycle._sql.sql_literal``, so nothing from the text reaches the SQL
unquoted.

Grammar
-------
The syntax is Python's expression syntax, restricted to:

* literals: numbers (``3``, ``2.5``, ``1e-3``, ``1_000``), strings (``'Jazz'``, ``"it's"``),
  ``True``, ``False``, ``None``;
* column names: a bare identifier (``valence``, ``select``), or any name between backticks,
  as in ``x * `my col` * 2`` (a backtick inside the name is written twice);
* arithmetic: ``+ - * / // % **`` and unary ``-``/``+``;
* comparisons: ``== != < <= > >=``, chained like Python (``0 <= x < 1``);
* membership: ``x in (lit, ...)`` and ``x not in [lit, ...]`` with a tuple, list or set of
  literals of one kind (all numbers, all strings or all booleans);
* null tests: ``x is None`` and ``x is not None``;
* logic: ``and``, ``or``, ``not``;
* conditionals: ``a if condition else b``;
* calls of these functions (positional arguments only): ``abs``, ``sqrt``, ``exp``,
  ``log(x[, base])`` (natural log by default), ``log10``, ``round(x[, ndigits])``, ``floor``,
  ``ceil``, ``min``/``least`` and ``max``/``greatest`` (two or more arguments), ``coalesce``,
  ``isnull``/``isna``, ``notnull``/``notna``, ``lower``, ``upper``, ``length``,
  ``clip(x, lo, hi)`` and ``cast(x, 'float'|'int'|'string'|'bool')``.

Anything else (attribute access, subscripts, lambdas, comprehensions, f-strings, bytes, starred
or keyword arguments, ``:=``, bitwise operators, unknown functions, ...) is rejected with a
:class:`~mlcycle.errors.SpecValidationError` whose ``field`` is ``"expression"`` and whose
message names the construct and its position (a 0-based character offset into the text).
The text is limited to :data:`MAX_LENGTH` characters and :data:`MAX_DEPTH` levels of nesting.

Semantics
---------
The SQL follows Python where it can and SQL's null logic where it must:

* ``/`` is always true division (both sides are cast to ``DOUBLE``); ``//`` is Python's floor
  division, computed in ``DOUBLE`` (so exact for integers up to 2**53, and ``1 // 0.1`` is
  ``9.0`` as in Python and NumPy); ``%`` is Python's modulo (the sign follows the divisor) and
  keeps the operands' type; ``**`` is ``power`` and, like Python, groups to the right.
  Dividing by zero gives ``inf``/``nan`` for ``/`` and ``//`` and NULL for ``%``, as pandas
  gives inf/NaN. Integer ``+ - *`` that overflows fails the query instead of wrapping.
* A boolean literal or comparison used in arithmetic counts as 1 or 0 (``(x > 0) * 2``).
* Missing values (NULL, which is also what DuckDB makes of pandas' NaN) propagate: a comparison
  with NULL is NULL, and a filter treats NULL as false. So ``not (x == 1)`` drops the rows where
  ``x`` is missing; write ``x != 1 or x is None`` to keep them. Comparing with ``None`` by
  ``==``/``!=`` is rejected: use ``is None``/``is not None``.
* ``min``/``max`` skip missing arguments (as pandas' row-wise ``min``/``max`` do); ``clip`` keeps
  a missing ``x`` missing, and a ``None`` bound means no bound (as ``Series.clip``).
* ``round`` rounds halves away from zero (SQL), not to even (Python); ``cast(x, 'int')``
  rounds to the nearest integer (ties to even) rather than truncating.
* Column names are matched case-sensitively by :meth:`Expression.check_columns` (DuckDB itself
  resolves quoted names case-insensitively).
"""

from __future__ import annotations

import ast
import bisect
import difflib
import re
import warnings
from collections.abc import Iterable

import attrs

from mlcycle._sql import quote_ident, sql_literal
from mlcycle.errors import SpecValidationError

__all__ = [
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_SQL_LENGTH",
    "SUPPORTED_FUNCTIONS",
    "Expression",
    "parse",
]

#: The longest expression text accepted, in characters.
MAX_LENGTH = 10_000
#: The deepest nesting accepted (brackets, operators of different kinds, calls, conditionals).
#: A flat run of one kind of operator (``a + b - c + ...``, ``a and b and ...``) counts once.
MAX_DEPTH = 100
#: The longest SQL an expression may compile to; only pathological nesting of ``//``, ``%``,
#: chained comparisons or ``clip`` (which repeat an operand in the SQL) gets near it.
MAX_SQL_LENGTH = 1_000_000

# Static kinds of values, as far as they are known without the data (None: unknown).
_NUMBER = "number"
_STRING = "string"
_BOOLEAN = "boolean"
_NULL = "null"
_Kind = str | None

# DuckDB cannot hold integers beyond HUGEINT in arithmetic.
_INT_MIN = -(2**127)
_INT_MAX = 2**127 - 1


# --------------------------------------------------------------------------------------------
# The syntax tree
# --------------------------------------------------------------------------------------------


@attrs.frozen
class _Literal:
    """A constant. ``kind`` keeps ``True`` and ``1`` apart (they compare equal in Python)."""

    value: bool | int | float | str | None
    kind: str


@attrs.frozen
class _Column:
    """A reference to a column of the input."""

    name: str


@attrs.frozen
class _Unary:
    """``-x``, ``+x`` or ``not x``."""

    op: str
    operand: _Node


@attrs.frozen
class _Arith:
    """A left-associative run of ``+ -`` or of ``* / // %``: ``first op1 x1 op2 x2 ...``."""

    first: _Node
    rest: tuple[tuple[str, _Node], ...]


@attrs.frozen
class _Power:
    """``base ** exponent``."""

    base: _Node
    exponent: _Node


@attrs.frozen
class _LiteralList:
    """The right side of ``in`` / ``not in``."""

    items: tuple[_Literal, ...]


@attrs.frozen
class _Compare:
    """A (possibly chained) comparison: ``first op1 x1 op2 x2 ...``, meaning a conjunction.

    ``op`` is one of ``== != < <= > >= in notin is isnot``; after ``in``/``notin`` comes a
    :class:`_LiteralList`, after ``is``/``isnot`` the literal ``None``.
    """

    first: _Node
    rest: tuple[tuple[str, _Node], ...]


@attrs.frozen
class _BoolOp:
    """``a and b and ...`` or ``a or b or ...``."""

    op: str
    operands: tuple[_Node, ...]


@attrs.frozen
class _Conditional:
    """``body if test else orelse``."""

    test: _Node
    body: _Node
    orelse: _Node


@attrs.frozen
class _Call:
    """A call of a whitelisted function, by its canonical name (see ``_FUNCTIONS``)."""

    function: str
    args: tuple[_Node, ...]


@attrs.frozen
class _Cast:
    """``CAST(operand AS sql_type)``."""

    operand: _Node
    sql_type: str


_Node = (
    _Literal
    | _Column
    | _Unary
    | _Arith
    | _Power
    | _LiteralList
    | _Compare
    | _BoolOp
    | _Conditional
    | _Call
    | _Cast
)


@attrs.frozen
class _Function:
    """A whitelisted function: its canonical name, arity and the kinds it takes and gives."""

    canonical: str
    min_args: int
    max_args: int | None
    arg_kind: _Kind  # _NUMBER, _STRING, or None for any
    result: str | None  # a kind, "unify" (the common kind of the arguments), or None


_FUNCTIONS: dict[str, _Function] = {
    "abs": _Function("abs", 1, 1, _NUMBER, _NUMBER),
    "sqrt": _Function("sqrt", 1, 1, _NUMBER, _NUMBER),
    "exp": _Function("exp", 1, 1, _NUMBER, _NUMBER),
    "log": _Function("ln", 1, 2, _NUMBER, _NUMBER),
    "log10": _Function("log10", 1, 1, _NUMBER, _NUMBER),
    "round": _Function("round", 1, 2, _NUMBER, _NUMBER),
    "floor": _Function("floor", 1, 1, _NUMBER, _NUMBER),
    "ceil": _Function("ceil", 1, 1, _NUMBER, _NUMBER),
    "min": _Function("least", 2, None, None, "unify"),
    "least": _Function("least", 2, None, None, "unify"),
    "max": _Function("greatest", 2, None, None, "unify"),
    "greatest": _Function("greatest", 2, None, None, "unify"),
    "coalesce": _Function("coalesce", 1, None, None, "unify"),
    "isnull": _Function("isnull", 1, 1, None, _BOOLEAN),
    "isna": _Function("isnull", 1, 1, None, _BOOLEAN),
    "notnull": _Function("notnull", 1, 1, None, _BOOLEAN),
    "notna": _Function("notnull", 1, 1, None, _BOOLEAN),
    "lower": _Function("lower", 1, 1, _STRING, _STRING),
    "upper": _Function("upper", 1, 1, _STRING, _STRING),
    "length": _Function("length", 1, 1, _STRING, _NUMBER),
    "clip": _Function("clip", 3, 3, _NUMBER, _NUMBER),
    "cast": _Function("cast", 2, 2, None, None),
}

#: The names of the functions an expression may call.
SUPPORTED_FUNCTIONS: frozenset[str] = frozenset(_FUNCTIONS)

# cast(x, '<name>') -> (SQL type, kind of the result)
_CAST_TYPES: dict[str, tuple[str, str]] = {
    "float": ("DOUBLE", _NUMBER),
    "double": ("DOUBLE", _NUMBER),
    "int": ("BIGINT", _NUMBER),
    "integer": ("BIGINT", _NUMBER),
    "str": ("VARCHAR", _STRING),
    "string": ("VARCHAR", _STRING),
    "bool": ("BOOLEAN", _BOOLEAN),
    "boolean": ("BOOLEAN", _BOOLEAN),
}

_ARITH_OPS: dict[type[ast.operator], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
}
_ADDITIVE = frozenset({"+", "-"})
_MULTIPLICATIVE = frozenset({"*", "/", "//", "%"})

_REJECTED_OPS: dict[type, str] = {
    ast.BitOr: "the bitwise operator '|' is not allowed; use 'or' for a logical or",
    ast.BitAnd: "the bitwise operator '&' is not allowed; use 'and' for a logical and",
    ast.BitXor: "the bitwise operator '^' is not allowed; use '**' for a power",
    ast.LShift: "the bitwise operator '<<' is not allowed",
    ast.RShift: "the bitwise operator '>>' is not allowed",
    ast.MatMult: "the matrix operator '@' is not allowed",
    ast.Invert: "the bitwise operator '~' is not allowed; use 'not' for a logical not",
}

_COMPARE_OPS: dict[type[ast.cmpop], str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "notin",
    ast.Is: "is",
    ast.IsNot: "isnot",
}
_SQL_COMPARE = {"==": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}

_DESCRIPTIONS: dict[type, str] = {
    ast.Attribute: "attribute access",
    ast.Subscript: "a subscript (indexing)",
    ast.Slice: "a slice",
    ast.Lambda: "a lambda",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a generator expression",
    ast.NamedExpr: "an assignment expression (':=')",
    ast.JoinedStr: "an f-string",
    ast.FormattedValue: "an f-string",
    ast.Starred: "a starred expression",
    ast.Dict: "a dict literal",
    ast.Await: "'await'",
    ast.Yield: "'yield'",
    ast.YieldFrom: "'yield'",
    ast.List: "a list literal (allowed only on the right of 'in' / 'not in')",
    ast.Tuple: "a tuple literal (allowed only on the right of 'in' / 'not in')",
    ast.Set: "a set literal (allowed only on the right of 'in' / 'not in')",
}


# --------------------------------------------------------------------------------------------
# Errors and positions
# --------------------------------------------------------------------------------------------


def _shorten(text: str, limit: int = 60) -> str:
    """Cut ``text`` to ``limit`` characters for a message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error(
    text: str, what: str, position: int | None = None, snippet: str | None = None
) -> SpecValidationError:
    """Build the error for a bad expression.

    Parameters
    ----------
    text : str
        The whole expression, as the user wrote it.
    what : str
        What is wrong.
    position : int, optional
        The 0-based character offset in ``text`` where it is wrong.
    snippet : str, optional
        The offending piece of ``text``.

    Returns
    -------
    SpecValidationError
        With ``field="expression"``.
    """
    where = ""
    if position is not None:
        if position >= len(text):
            where = " at the end"
        else:
            where = f" at position {position}"
            if snippet:
                where += f" ({_shorten(snippet, 40)!r})"
    return SpecValidationError(
        f"invalid expression {_shorten(text)!r}{where}: {what}", field="expression"
    )


@attrs.frozen
class _Piece:
    """A stretch of the text given to ``ast.parse`` and where it came from in the user's text.

    A verbatim piece was copied character for character; any other piece (a backtick name's
    placeholder, the wrapping brackets) stands for the whole of its original stretch.
    """

    t_start: int
    o_start: int
    o_len: int
    verbatim: bool


_NEWLINE = re.compile(r"\r\n|\r|\n")  # what Python's tokenizer takes for a line break


class _Source:
    """The user's text, the text handed to ``ast.parse``, and the way between their positions.

    Backtick-quoted names are replaced by placeholder identifiers and the whole text is wrapped
    in brackets (so that it may span lines), which moves positions; ``ast`` also reports
    columns in UTF-8 bytes. This class maps what ``ast`` reports back to character offsets in
    the user's text.
    """

    def __init__(
        self, original: str, translated: str, pieces: list[_Piece], names: dict[str, str]
    ) -> None:
        self.original = original
        self.translated = translated
        self.pieces = pieces
        self.names = names  # placeholder -> column name
        self._starts = [piece.t_start for piece in pieces]
        self._lines = [0] + [match.end() for match in _NEWLINE.finditer(translated)]

    def _line_offset(self, lineno: int, column: int, *, in_bytes: bool) -> int:
        """Return the offset in the translated text of a (1-based) line and a column on it."""
        lineno = min(max(lineno, 1), len(self._lines))
        start = self._lines[lineno - 1]
        if not in_bytes:
            return start + max(column, 0)
        end = self._lines[lineno] if lineno < len(self._lines) else len(self.translated)
        line = self.translated[start:end]
        if line.isascii():
            return start + column
        return start + len(line.encode("utf-8")[:column].decode("utf-8", errors="ignore"))

    def to_original(self, t_pos: int, *, end: bool = False) -> int:
        """Map an offset in the translated text to one in the original text.

        Parameters
        ----------
        t_pos : int
            The offset in the translated text.
        end : bool
            Whether ``t_pos`` is the (exclusive) end of a span rather than its start.

        Returns
        -------
        int
            The offset in the original text.
        """
        t_pos = min(max(t_pos, 0), len(self.translated))
        probe = t_pos - 1 if end and t_pos > 0 else t_pos
        piece = self.pieces[max(bisect.bisect_right(self._starts, probe) - 1, 0)]
        if piece.verbatim:
            position = piece.o_start + (t_pos - piece.t_start)
        else:
            position = piece.o_start + piece.o_len if end else piece.o_start
        return min(max(position, 0), len(self.original))

    def t_span(self, node: ast.AST) -> tuple[int, int]:
        """Return the start and end of an ``ast`` node in the translated text."""
        start = self._line_offset(node.lineno, node.col_offset, in_bytes=True)
        end_lineno = getattr(node, "end_lineno", None) or node.lineno
        end_col = getattr(node, "end_col_offset", None)
        if end_col is None:
            return start, start + 1
        return start, self._line_offset(end_lineno, end_col, in_bytes=True)

    def span(self, node: ast.AST) -> tuple[int, int]:
        """Return the start and end of an ``ast`` node in the original text."""
        start, end = self.t_span(node)
        return self.to_original(start), self.to_original(end, end=True)

    def raw(self, node: ast.AST) -> str:
        """Return the node's text as parsed (before Python's NFKC normalization of names)."""
        start, end = self.t_span(node)
        return self.translated[start:end]

    def syntax_error_position(self, exc: SyntaxError) -> int | None:
        """Return the original offset of a syntax error (its ``offset`` counts characters)."""
        if exc.lineno is None or exc.offset is None:
            return None
        t_pos = self._line_offset(exc.lineno, exc.offset - 1, in_bytes=False)
        return self.to_original(t_pos)


def _translate(text: str) -> _Source:
    r"""Prepare the user's text for ``ast.parse``.

    Backtick-quoted column names become placeholder identifiers (strings and comments are
    skipped, so a backtick inside a string literal stays text), the brackets are checked for
    balance and depth, and the whole is wrapped in ``(`` ... ``\\n)``.

    Parameters
    ----------
    text : str
        The expression as the user wrote it.

    Returns
    -------
    _Source
        The translated text and the way back to the user's positions.

    Raises
    ------
    SpecValidationError
        For an unterminated string or backtick name, an empty backtick name, unbalanced
        brackets or brackets nested too deeply.
    """
    prefix = "_bt"
    while prefix in text:  # no identifier in the text can then equal a placeholder
        prefix += "_"
    out: list[str] = ["("]
    pieces: list[_Piece] = [_Piece(0, 0, 0, verbatim=False)]
    names: dict[str, str] = {}
    t_len = 1
    copied = 0  # the original text before this offset has been written to ``out``
    opened: list[int] = []  # offsets of the open brackets
    i, n = 0, len(text)

    def copy_until(stop: int) -> None:
        nonlocal t_len, copied
        if stop > copied:
            pieces.append(_Piece(t_len, copied, stop - copied, verbatim=True))
            out.append(text[copied:stop])
            t_len += stop - copied
        copied = stop

    while i < n:
        char = text[i]
        if char in "'\"":
            triple = text.startswith(char * 3, i)
            closing = char * 3 if triple else char
            j = i + len(closing)
            while j < n:
                if text[j] == "\\":
                    j += 2
                elif text.startswith(closing, j):
                    j += len(closing)
                    break
                elif text[j] in "\r\n" and not triple:
                    j = n + 1
                else:
                    j += 1
            else:
                j = n + 1
            if j > n:
                raise _error(text, "unterminated string literal", i, text[i:])
            i = j
        elif char == "#":
            newline = _NEWLINE.search(text, i)
            i = newline.start() if newline else n
        elif char == "`":
            j = i + 1
            name: list[str] = []
            while True:
                close = text.find("`", j)
                if close < 0:
                    raise _error(text, "unterminated backtick-quoted column name", i, text[i:])
                name.append(text[j:close])
                if text.startswith("``", close):  # a doubled backtick stands for one
                    name.append("`")
                    j = close + 2
                    continue
                break
            column = "".join(name)
            if not column:
                raise _error(text, "empty backtick-quoted column name", i, text[i : close + 1])
            copy_until(i)
            placeholder = f"{prefix}{len(names)}"
            names[placeholder] = column
            pieces.append(_Piece(t_len, i, close + 1 - i, verbatim=False))
            out.append(f" {placeholder} ")  # spaces: never glued to a neighbouring token
            t_len += len(placeholder) + 2
            copied = i = close + 1
        elif char in "([{":
            opened.append(i)
            if len(opened) > MAX_DEPTH:
                raise _error(text, f"brackets are nested more than {MAX_DEPTH} levels deep", i)
            i += 1
        elif char in ")]}":
            if not opened:
                raise _error(text, f"unmatched {char!r}", i, char)
            opened.pop()
            i += 1
        else:
            i += 1
    if opened:
        raise _error(text, f"{text[opened[-1]]!r} was never closed", opened[-1], text[opened[-1]])
    copy_until(n)
    pieces.append(_Piece(t_len, n, 0, verbatim=False))
    out.append("\n)")
    return _Source(text, "".join(out), pieces, names)


# --------------------------------------------------------------------------------------------
# From Python's syntax tree to ours
# --------------------------------------------------------------------------------------------


def _kind_name(kind: str) -> str:
    """Name a kind for a message: ``"number"`` -> ``"a number"`` and so on."""
    return {_NULL: "None", _BOOLEAN: "a boolean", _NUMBER: "a number", _STRING: "a string"}[kind]


class _Converter:
    """Converts a Python ``ast`` expression into our nodes, by whitelist.

    Each ``_convert_*`` method returns the node and its static kind (``None`` when it depends on
    the data), and raises :class:`SpecValidationError` for anything not whitelisted.
    """

    def __init__(self, source: _Source) -> None:
        self.source = source
        self.columns: set[str] = set()

    # -- helpers ---------------------------------------------------------------------------

    def fail(self, node: ast.AST, what: str) -> SpecValidationError:
        """Build the error for ``node``, with its position and text."""
        start, end = self.source.span(node)
        return _error(self.source.original, what, start, self.source.original[start:end])

    def convert(self, node: ast.AST, depth: int) -> tuple[_Node, _Kind]:
        """Convert one node (and, recursively, its children)."""
        if depth > MAX_DEPTH:
            raise self.fail(node, f"the expression is nested more than {MAX_DEPTH} levels deep")
        handler = _HANDLERS.get(type(node))
        if handler is None:
            description = _DESCRIPTIONS.get(type(node), f"a {type(node).__name__} expression")
            raise self.fail(node, f"{description} is not allowed")
        return handler(self, node, depth)

    def numeric_operand(self, node: ast.AST, converted: _Node, kind: _Kind, what: str) -> _Node:
        """Check an operand of arithmetic; booleans count as 0/1 like in Python."""
        if kind == _BOOLEAN:
            return _Cast(converted, "INTEGER")
        if kind == _STRING:
            raise self.fail(node, f"{what} cannot be applied to a string")
        if kind == _NULL:
            raise self.fail(node, f"{what} cannot be applied to None")
        return converted

    def boolean_operand(self, node: ast.AST, kind: _Kind, what: str) -> None:
        """Check an operand that must be a truth value."""
        if kind in (_NUMBER, _STRING):
            raise self.fail(node, f"{what} needs a boolean (a comparison), not {_kind_name(kind)}")

    def unify(self, nodes: list[ast.AST], kinds: list[_Kind], what: str) -> _Kind:
        """Return the common kind of values that end up in one column (branches, ...)."""
        known = [
            (node, kind)
            for node, kind in zip(nodes, kinds, strict=True)
            if kind not in (None, _NULL)
        ]
        for node, kind in known[1:]:
            if kind != known[0][1]:
                raise self.fail(
                    node,
                    f"{what} mixes {_kind_name(known[0][1])} with {_kind_name(kind)}",
                )
        if known:
            return known[0][1]
        return _NULL if all(kind == _NULL for kind in kinds) else None

    # -- leaves ----------------------------------------------------------------------------

    def _convert_constant(self, node: ast.Constant, depth: int) -> tuple[_Node, _Kind]:
        value = node.value
        if value is None:
            return _Literal(None, _NULL), _NULL
        if isinstance(value, bool):
            return _Literal(value, _BOOLEAN), _BOOLEAN
        if isinstance(value, int):
            if not _INT_MIN <= value <= _INT_MAX:
                raise self.fail(
                    node, "integer literal out of range (write a float such as 1e40 instead)"
                )
            return _Literal(value, _NUMBER), _NUMBER
        if isinstance(value, float):
            return _Literal(value, _NUMBER), _NUMBER
        if isinstance(value, str):
            if "\x00" in value:
                raise self.fail(node, "string literals must not contain NUL characters")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise self.fail(node, "string literal is not valid Unicode") from None
            return _Literal(value, _STRING), _STRING
        if isinstance(value, bytes):
            raise self.fail(node, "a bytes literal is not allowed")
        if isinstance(value, complex):
            raise self.fail(node, "complex numbers are not allowed")
        raise self.fail(node, f"the constant {value!r} is not allowed")

    def _convert_name(self, node: ast.Name, depth: int) -> tuple[_Node, _Kind]:
        raw = self.source.raw(node)
        name = self.source.names.get(raw, raw)
        self.columns.add(name)
        return _Column(name), None

    # -- operators -------------------------------------------------------------------------

    def _convert_unary(self, node: ast.UnaryOp, depth: int) -> tuple[_Node, _Kind]:
        rejected = _REJECTED_OPS.get(type(node.op))
        if rejected is not None:
            raise self.fail(node, rejected)
        operand, kind = self.convert(node.operand, depth + 1)
        if isinstance(node.op, ast.Not):
            self.boolean_operand(node.operand, kind, "'not'")
            return _Unary("not", operand), _BOOLEAN
        op = "-" if isinstance(node.op, ast.USub) else "+"
        operand = self.numeric_operand(node.operand, operand, kind, f"unary {op!r}")
        if isinstance(operand, _Literal):  # fold negative numbers into literals
            value = -operand.value if op == "-" else operand.value
            if isinstance(value, int) and not _INT_MIN <= value <= _INT_MAX:
                raise self.fail(node, "integer literal out of range")
            return _Literal(value, _NUMBER), _NUMBER
        return _Unary(op, operand), _NUMBER

    def _convert_binop(self, node: ast.BinOp, depth: int) -> tuple[_Node, _Kind]:
        op = _ARITH_OPS.get(type(node.op))
        if op is None:
            what = _REJECTED_OPS.get(
                type(node.op), f"the operator {type(node.op).__name__} is not allowed"
            )
            raise self.fail(node, what)
        if op == "**":
            base, base_kind = self.convert(node.left, depth + 1)
            exponent, exponent_kind = self.convert(node.right, depth + 1)
            base = self.numeric_operand(node.left, base, base_kind, "'**'")
            exponent = self.numeric_operand(node.right, exponent, exponent_kind, "'**'")
            return _Power(base, exponent), _NUMBER
        # Walk the left spine of a run of operators of one precedence without recursion, so
        # that a long sum neither counts as deep nesting nor exhausts Python's stack.
        group = _ADDITIVE if op in _ADDITIVE else _MULTIPLICATIVE
        spine: list[tuple[str, ast.AST]] = []
        current: ast.AST = node
        while isinstance(current, ast.BinOp) and _ARITH_OPS.get(type(current.op)) in group:
            spine.append((_ARITH_OPS[type(current.op)], current.right))
            current = current.left
        spine.reverse()
        first, kind = self.convert(current, depth + 1)
        first = self.numeric_operand(current, first, kind, f"{spine[0][0]!r}")
        rest = []
        for item_op, item in spine:
            operand, kind = self.convert(item, depth + 1)
            rest.append((item_op, self.numeric_operand(item, operand, kind, f"{item_op!r}")))
        return _Arith(first, tuple(rest)), _NUMBER

    def _convert_boolop(self, node: ast.BoolOp, depth: int) -> tuple[_Node, _Kind]:
        op = "and" if isinstance(node.op, ast.And) else "or"
        operands = []
        for value in node.values:
            operand, kind = self.convert(value, depth + 1)
            self.boolean_operand(value, kind, f"{op!r}")
            operands.append(operand)
        return _BoolOp(op, tuple(operands)), _BOOLEAN

    def _convert_literal_list(self, node: ast.AST, depth: int) -> tuple[_LiteralList, _Kind]:
        if not isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            raise self.fail(
                node,
                "the right side of 'in' / 'not in' must be a tuple or list of literals, "
                "such as ('Jazz', 'Blues')",
            )
        items: list[_Literal] = []
        kinds: list[_Kind] = []
        for element in node.elts:
            if isinstance(element, ast.Starred):
                raise self.fail(element, "a starred item is not allowed")
            item, kind = self.convert(element, depth + 1)
            if not isinstance(item, _Literal):
                raise self.fail(element, "the items of an 'in' list must be literals")
            if kind == _NULL:
                raise self.fail(
                    element, "None cannot be in an 'in' list; use 'x is None or x in (...)'"
                )
            items.append(item)
            kinds.append(kind)
        kind = self.unify(list(node.elts), kinds, "the 'in' list") if items else None
        return _LiteralList(tuple(items)), kind

    def _convert_compare(self, node: ast.Compare, depth: int) -> tuple[_Node, _Kind]:
        first, left_kind = self.convert(node.left, depth + 1)
        left_node: ast.AST = node.left
        left: _Node = first
        rest: list[tuple[str, _Node]] = []
        for ast_op, comparator in zip(node.ops, node.comparators, strict=True):
            op = _COMPARE_OPS[type(ast_op)]
            if isinstance(left, _LiteralList):
                raise self.fail(left_node, "a tuple or list is allowed only on the right of 'in'")
            if op in ("in", "notin"):
                right, right_kind = self._convert_literal_list(comparator, depth + 1)
                if None not in (left_kind, right_kind) and left_kind != right_kind:
                    raise self.fail(
                        node,
                        f"'in' compares {_kind_name(left_kind)} with a list of "
                        f"{right_kind} literals",
                    )
            elif op in ("is", "isnot"):
                right, right_kind = self.convert(comparator, depth + 1)
                if right_kind != _NULL:
                    if left_kind == _NULL and not rest:  # None is x
                        first, left, left_kind = right, right, right_kind
                        rest.append((op, _Literal(None, _NULL)))
                        left_node = comparator
                        continue
                    raise self.fail(
                        comparator,
                        "'is' / 'is not' can only compare with None (x is None); "
                        "use '==' / '!=' for values",
                    )
            else:
                right, right_kind = self.convert(comparator, depth + 1)
                if _NULL in (left_kind, right_kind):
                    hint = "x is None" if op == "==" else "x is not None"
                    if op in ("==", "!="):
                        message = f"comparing with None by {op!r} is never true; use '{hint}'"
                    else:
                        message = f"None cannot be compared by {op!r}"
                    raise self.fail(node, message)
                if None not in (left_kind, right_kind) and left_kind != right_kind:
                    raise self.fail(
                        node,
                        f"{op!r} compares {_kind_name(left_kind)} with {_kind_name(right_kind)}",
                    )
            rest.append((op, right))
            left, left_kind, left_node = right, right_kind, comparator
        return _Compare(first, tuple(rest)), _BOOLEAN

    def _convert_ifexp(self, node: ast.IfExp, depth: int) -> tuple[_Node, _Kind]:
        test, test_kind = self.convert(node.test, depth + 1)
        self.boolean_operand(node.test, test_kind, "the condition of 'if'")
        body, body_kind = self.convert(node.body, depth + 1)
        orelse, orelse_kind = self.convert(node.orelse, depth + 1)
        kind = self.unify([node.body, node.orelse], [body_kind, orelse_kind], "'if ... else'")
        return _Conditional(test, body, orelse), kind

    # -- calls -----------------------------------------------------------------------------

    def _convert_call(self, node: ast.Call, depth: int) -> tuple[_Node, _Kind]:
        func = node.func
        allowed = ", ".join(sorted(_FUNCTIONS))
        if not isinstance(func, ast.Name):
            description = _DESCRIPTIONS.get(type(func), "an expression")
            raise self.fail(
                func, f"only named functions can be called, not {description} ({allowed})"
            )
        name = self.source.raw(func)
        if name in self.source.names:
            raise self.fail(func, "a backtick-quoted column name cannot be called")
        if name.startswith("_"):
            raise self.fail(func, f"function names starting with '_' are not allowed ({name!r})")
        function = _FUNCTIONS.get(name)
        if function is None:
            close = difflib.get_close_matches(name.lower(), list(_FUNCTIONS), n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise self.fail(func, f"unknown function {name!r}{hint} (supported: {allowed})")
        if node.keywords:
            keyword = node.keywords[0]
            label = f"'{keyword.arg}='" if keyword.arg else "'**'"
            raise self.fail(
                keyword,
                f"keyword arguments ({label}) are not allowed in {name}(); pass them by position",
            )
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.fail(arg, "a starred argument is not allowed")
        count = len(node.args)
        if count < function.min_args or (
            function.max_args is not None and count > function.max_args
        ):
            if function.max_args is None:
                expected = f"at least {function.min_args}"
            elif function.max_args == function.min_args:
                expected = str(function.min_args)
            else:
                expected = f"{function.min_args} to {function.max_args}"
            raise self.fail(node, f"{name}() takes {expected} argument(s), got {count}")
        if function.canonical == "cast":
            return self._convert_cast(node, depth)
        args: list[_Node] = []
        kinds: list[_Kind] = []
        for position, arg in enumerate(node.args):
            converted, kind = self.convert(arg, depth + 1)
            if function.canonical == "round" and position == 1:
                if not (isinstance(converted, _Literal) and type(converted.value) is int):
                    raise self.fail(arg, "the ndigits of round() must be an integer literal")
            elif function.canonical == "clip" and position > 0 and kind == _NULL:
                pass  # clip(x, lo, None): no upper bound, like Series.clip
            elif function.arg_kind == _NUMBER:
                converted = self.numeric_operand(arg, converted, kind, f"{name}()")
            elif function.arg_kind == _STRING and kind in (_NUMBER, _BOOLEAN):
                raise self.fail(
                    arg, f"{name}() needs a string, not {_kind_name(kind)} (use cast(x, 'string'))"
                )
            args.append(converted)
            kinds.append(kind)
        if function.result == "unify":
            result = self.unify(list(node.args), kinds, f"{name}()")
        else:
            result = function.result
        return _Call(function.canonical, tuple(args)), result

    def _convert_cast(self, node: ast.Call, depth: int) -> tuple[_Node, _Kind]:
        operand, _ = self.convert(node.args[0], depth + 1)
        target = node.args[1]
        names = ", ".join(repr(name) for name in _CAST_TYPES)
        if not (isinstance(target, ast.Constant) and isinstance(target.value, str)):
            raise self.fail(target, f"the type of cast() must be a string literal: one of {names}")
        if target.value not in _CAST_TYPES:
            raise self.fail(target, f"unknown type {target.value!r} for cast(); use one of {names}")
        sql_type, kind = _CAST_TYPES[target.value]
        return _Cast(operand, sql_type), kind


_HANDLERS = {
    ast.Constant: _Converter._convert_constant,
    ast.Name: _Converter._convert_name,
    ast.UnaryOp: _Converter._convert_unary,
    ast.BinOp: _Converter._convert_binop,
    ast.BoolOp: _Converter._convert_boolop,
    ast.Compare: _Converter._convert_compare,
    ast.IfExp: _Converter._convert_ifexp,
    ast.Call: _Converter._convert_call,
}


# --------------------------------------------------------------------------------------------
# From our syntax tree to SQL
# --------------------------------------------------------------------------------------------


class _SqlWriter:
    """Writes our nodes as DuckDB SQL, every compound part in parentheses."""

    def __init__(self, text: str) -> None:
        self.text = text

    def checked(self, sql: str) -> str:
        """Stop SQL that grows without bound (operands repeated by ``%``, ``clip``, chains)."""
        if len(sql) > MAX_SQL_LENGTH:
            raise _error(
                self.text,
                f"the expression compiles to more than {MAX_SQL_LENGTH} characters of SQL "
                "(too deeply nested); simplify it",
            )
        return sql

    def write(self, node: _Node) -> str:
        """Write the SQL of one node."""
        if isinstance(node, _Literal):
            return sql_literal(node.value)
        if isinstance(node, _Column):
            return quote_ident(node.name)
        if isinstance(node, _Unary):
            operand = self.write(node.operand)
            return self.checked(f"(NOT {operand})" if node.op == "not" else f"({node.op}{operand})")
        if isinstance(node, _Arith):
            sql = self.write(node.first)
            for op, operand in node.rest:
                sql = self.checked(self.arith(op, sql, self.write(operand)))
            return sql
        if isinstance(node, _Power):
            return self.checked(f"power({self.write(node.base)}, {self.write(node.exponent)})")
        if isinstance(node, _Compare):
            return self.compare(node)
        if isinstance(node, _BoolOp):
            joiner = f" {node.op.upper()} "
            return self.checked("(" + joiner.join(self.write(o) for o in node.operands) + ")")
        if isinstance(node, _Conditional):
            test, body, orelse = (self.write(n) for n in (node.test, node.body, node.orelse))
            return self.checked(f"(CASE WHEN {test} THEN {body} ELSE {orelse} END)")
        if isinstance(node, _Cast):
            return self.checked(f"CAST({self.write(node.operand)} AS {node.sql_type})")
        if isinstance(node, _Call):
            return self.checked(self.call(node.function, [self.write(a) for a in node.args]))
        raise AssertionError(f"unexpected node {node!r}")  # pragma: no cover

    @staticmethod
    def arith(op: str, left: str, right: str) -> str:
        """Write one arithmetic operation on two SQL operands."""
        if op in ("+", "-", "*"):
            return f"({left} {op} {right})"
        if op == "/":
            return f"(CAST({left} AS DOUBLE) / CAST({right} AS DOUBLE))"
        if op == "//":
            # Python's float floor division, which is exact where floor(a / b) is not (Python
            # and NumPy give 1 // 0.1 == 9.0, floor(1 / 0.1) is 10): from the exact remainder
            # m = fmod(a, b), (a - m) / b is (nearly) the integral quotient; round it, and step
            # down where m's sign differs from b's. Division by zero gives a / b (inf or nan).
            a, b = f"CAST({left} AS DOUBLE)", f"CAST({right} AS DOUBLE)"
            m = f"({a} % {b})"
            return (
                f"(CASE WHEN {b} = 0 THEN {a} / {b} ELSE round(({a} - {m}) / {b}) - "
                f"(CASE WHEN ({m} <> 0) AND (({m} < 0) <> ({b} < 0)) THEN 1 ELSE 0 END) END)"
            )
        # Python's modulo: SQL's remainder takes the sign of the dividend, so shift a nonzero
        # remainder whose sign differs from the divisor's by the divisor. x % 0 is NULL.
        remainder = f"({left} % NULLIF({right}, 0))"
        return (
            f"(CASE WHEN ({remainder} <> 0) AND (({remainder} < 0) <> ({right} < 0)) "
            f"THEN ({remainder} + {right}) ELSE {remainder} END)"
        )

    def compare(self, node: _Compare) -> str:
        """Write a comparison; a chain becomes a conjunction of its links."""
        links = []
        left = self.write(node.first)
        for op, operand in node.rest:
            if op in ("is", "isnot"):
                links.append(f"({left} IS {'NOT ' if op == 'isnot' else ''}NULL)")
                continue
            if op in ("in", "notin"):
                assert isinstance(operand, _LiteralList)
                if not operand.items:  # like Python: nothing is in an empty list
                    links.append("FALSE" if op == "in" else "TRUE")
                else:
                    items = ", ".join(sql_literal(item.value) for item in operand.items)
                    links.append(f"({left} {'NOT IN' if op == 'notin' else 'IN'} ({items}))")
                continue
            right = self.write(operand)
            links.append(f"({left} {_SQL_COMPARE[op]} {right})")
            left = right
        sql = links[0] if len(links) == 1 else "(" + " AND ".join(links) + ")"
        return self.checked(sql)

    @staticmethod
    def call(function: str, args: list[str]) -> str:
        """Write a whitelisted function call on SQL arguments."""
        if function == "isnull":
            return f"({args[0]} IS NULL)"
        if function == "notnull":
            return f"({args[0]} IS NOT NULL)"
        if function == "ln" and len(args) == 2:
            return f"(ln({args[0]}) / ln({args[1]}))"
        if function == "clip":
            value, low, high = args
            return (
                f"(CASE WHEN {value} IS NULL THEN NULL "
                f"ELSE least(greatest({value}, {low}), {high}) END)"
            )
        return f"{function}({', '.join(args)})"


# --------------------------------------------------------------------------------------------
# The public API
# --------------------------------------------------------------------------------------------


def _compile(text: object) -> tuple[_Node, frozenset[str], str, _Kind]:
    """Parse, check and compile an expression's text.

    Returns
    -------
    tuple
        The root node, the columns referenced, the SQL and the static kind of the result.
    """
    if not isinstance(text, str):
        raise SpecValidationError(
            f"an expression must be a string, got {type(text).__name__}", field="expression"
        )
    if len(text) > MAX_LENGTH:
        raise _error(text, f"the expression is longer than {MAX_LENGTH} characters ({len(text)})")
    if not text.strip():
        raise _error(text, "the expression is empty")
    nul = text.find("\x00")
    if nul >= 0:
        raise _error(text, "NUL characters are not allowed", nul)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _error(text, "the text is not valid Unicode (lone surrogate)", exc.start) from None
    source = _translate(text)
    try:
        with warnings.catch_warnings():  # e.g. "'is' with a literal": rejected below anyway
            warnings.simplefilter("ignore")
            tree = ast.parse(source.translated, mode="eval")
    except SyntaxError as exc:
        position = source.syntax_error_position(exc)
        snippet = text[position : position + 20] if position is not None else None
        raise _error(text, f"syntax error: {exc.msg}", position, snippet) from None
    except (RecursionError, MemoryError):
        raise _error(
            text, "the expression is too complex for the parser (too deeply nested or too long)"
        ) from None
    converter = _Converter(source)
    try:
        root, kind = converter.convert(tree.body, 1)
    except RecursionError:  # pragma: no cover - MAX_DEPTH stops this first
        raise _error(text, "the expression is too deeply nested") from None
    sql = _SqlWriter(text).write(root)
    return root, frozenset(converter.columns), sql, kind


@attrs.frozen
class Expression:
    """A parsed, checked expression of the flow expression language.

    Constructing one (directly or by :meth:`parse`) parses and checks the text, so every
    instance is valid. Instances are immutable and hashable; two are equal when their texts are.
    The grammar and semantics are described in :mod:`mlcycle.flow.expr`.

    Parameters
    ----------
    text : str
        The expression, for example ``"0.3*valence + 0.1*liveness"``.

    Raises
    ------
    SpecValidationError
        With ``field="expression"``, if the text is not a valid expression.

    Examples
    --------
    >>> e = Expression.parse("Rating == 5 and genre in ('Jazz', 'Blues')")
    >>> sorted(e.columns)
    ['Rating', 'genre']
    >>> print(e.to_sql())
    (("Rating" = 5) AND ("genre" IN ('Jazz', 'Blues')))
    """

    text: str
    _root: _Node = attrs.field(init=False, eq=False, repr=False)
    _columns: frozenset[str] = attrs.field(init=False, eq=False, repr=False)
    _sql: str = attrs.field(init=False, eq=False, repr=False)
    _result_type: _Kind = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        root, columns, sql, kind = _compile(self.text)
        object.__setattr__(self, "_root", root)
        object.__setattr__(self, "_columns", columns)
        object.__setattr__(self, "_sql", sql)
        object.__setattr__(self, "_result_type", kind)

    @classmethod
    def parse(cls, text: str) -> Expression:
        """Parse and check an expression.

        Parameters
        ----------
        text : str
            The expression.

        Returns
        -------
        Expression
            The parsed expression.

        Raises
        ------
        SpecValidationError
            With ``field="expression"``, if the text is not a valid expression.
        """
        return cls(text)

    @property
    def columns(self) -> frozenset[str]:
        """Return the names of the columns the expression refers to."""
        return self._columns

    @property
    def result_type(self) -> str | None:
        """Return the kind of value the expression gives, where it is known without the data.

        ``"boolean"`` (comparisons, ``and``/``or``/``not``, ``isnull``, ...), ``"number"``
        (arithmetic, numeric functions), ``"string"``, ``"null"``, or ``None`` when it depends
        on the types of the columns (a bare column, ``coalesce`` of columns, ...). A filter step
        can use it to reject an expression that is certainly not a condition.
        """
        return self._result_type

    def to_sql(self) -> str:
        """Return the expression as DuckDB SQL, for ``SELECT <sql> FROM ...`` or ``WHERE <sql>``.

        Returns
        -------
        str
            The SQL. Columns are double-quoted identifiers and every compound part is in
            parentheses, so the SQL can be embedded anywhere an expression is allowed.
        """
        return self._sql

    def check_columns(self, available: Iterable[str]) -> None:
        """Check that every column the expression refers to is available.

        Parameters
        ----------
        available : iterable of str
            The columns of the input (matched case-sensitively).

        Raises
        ------
        SpecValidationError
            With ``field="expression"``, naming each unknown column with its close matches
            among ``available``.
        """
        names = [available] if isinstance(available, str) else [str(n) for n in available]
        missing = sorted(self._columns.difference(names))
        if not missing:
            return
        described = []
        for name in missing:
            close = [n for n in names if n.lower() == name.lower()]
            close += [n for n in difflib.get_close_matches(name, names, n=3) if n not in close]
            hint = f" (did you mean {', '.join(map(repr, close[:3]))}?)" if close else ""
            described.append(f"{name!r}{hint}")
        listing = ", ".join(map(repr, sorted(names)[:20])) + (", ..." if len(names) > 20 else "")
        noun = "column" if len(missing) == 1 else "columns"
        raise SpecValidationError(
            f"expression {_shorten(self.text)!r} refers to unknown {noun} "
            f"{', '.join(described)}; available columns: {listing or '(none)'}",
            field="expression",
        )

    def __str__(self) -> str:
        return self.text


def parse(text: str | Expression) -> Expression:
    """Parse and check an expression (an :class:`Expression` is returned as it is).

    Parameters
    ----------
    text : str or Expression
        The expression.

    Returns
    -------
    Expression
        The parsed expression.

    Raises
    ------
    SpecValidationError
        With ``field="expression"``, if the text is not a valid expression.
    """
    if isinstance(text, Expression):
        return text
    return Expression(text)

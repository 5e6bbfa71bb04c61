"""promptfoo's ``is-sql`` and ``contains-sql``, with promptfoo's verdicts
(``tests/data/promptfoo_cases.yaml``): the output is SQL of the database named by the value's
``databaseType`` (MySQL by default), and touches only the tables and columns its
``allowedTables`` / ``allowedColumns`` allow.

promptfoo parses with node-sql-parser; here sqlglot parses, with the dialect of the database
(``model.specs.SQL_DATABASES``). sqlglot reads SQL generously (it parses one dialect's syntax in
another's, and a bare expression such as ``hello world`` as a query), so a few rules of our own
give node-sql-parser's strictness and promptfoo's own checks:

- each statement is a statement (``SELECT``, ``INSERT``, ``CREATE`` ...), not an expression, and
  not text sqlglot keeps unparsed (its "command" fallback); a ``SELECT`` selects something, an
  ``UPDATE`` sets something, a statement does not start with ``FROM`` (DuckDB excepted);
- an unquoted identifier is not a word the database reserves (where sqlglot lists them: MySQL,
  BigQuery, Redshift, Trino, Athena): ``SELECT * FROM order`` fails, as in MySQL;
- ``SELECT [DISTINCT ...] a b FROM`` fails as a likely missing comma (promptfoo's rule), though
  SQL reads ``b`` as an alias; ``SELECT a AS b FROM`` passes;
- syntax sqlglot accepts in every dialect fails where the database lacks it: ``ILIKE`` in
  MySQL, MariaDB, SQLite, TransactSQL, BigQuery and Hive; ``LOCK IN SHARE MODE`` outside MySQL
  and MariaDB; ``DELETE`` without ``FROM`` except in TransactSQL, BigQuery and Oracle; and
  ``generate_series`` (PostgreSQL's) in MySQL and MariaDB, as promptfoo refuses it.

Allowed tables and columns are node-sql-parser's authorities, ``<statement>::<db>::<table>``
and ``<statement>::<table>::<column>`` (``null`` when not written), each entry a regular
expression matching a whole authority, ignoring case (as node-sql-parser's ``whiteListCheck``).
A table written in a statement's own clauses has that statement's kind (``update::null::a``),
one inside a query ``select``; columns are ``select`` (``WHERE`` too) except an ``INSERT``'s
column list (``insert::t::c``, or ``insert::t::(.*)`` without one), an ``UPDATE``'s ``SET``
targets (``update``), and a ``DELETE``, which needs ``delete::t::(.*)``. ``SELECT *`` is
``select::null::(.*)``; an alias stands for its table. As promptfoo, an entry
``s::t::c`` also allows ``s::null::c`` (an unqualified column). A ``WITH`` query's own names
are not tables.

Work is bounded: SQL longer than ``MAX_CHARS`` is refused without parsing (sqlglot reads about
150 KB a second), parentheses nested deeper than ``MAX_DEPTH`` are refused before parsing, and
deeper nesting of other kinds that would exhaust Python's stack fails saying so; the allowed
patterns have ``MATCH_SECONDS`` in all. Finding a fenced block is ``str.find`` from fence to
fence. Each check returns ``(passed, reason)``.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from typing import Any

from ..model.specs import sql_options

MAX_CHARS = 64_000
USABLE = {"dual"}  # reserved, yet written bare where a table goes: SELECT 1 FROM DUAL (MySQL, Oracle)
MAX_DEPTH = 32
MATCH_SECONDS = 1.0
SHOWN = 10  # unauthorized authorities listed in a reason

NO_ILIKE = {"mysql", "mariadb", "sqlite", "transactsql", "bigquery", "hive"}
SHARE_MODE = {"mysql", "mariadb"}
NO_GENERATE_SERIES = {"mysql", "mariadb"}
DELETE_WITHOUT_FROM = {"transactsql", "bigquery", "oracle"}
FROM_FIRST = {"duckdb"}
MODIFIERS = {"DISTINCT", "ALL", "DISTINCTROW", "SQL_NO_CACHE", "SQL_CACHE", "SQL_CALC_FOUND_ROWS", "HIGH_PRIORITY",
             "STRAIGHT_JOIN", "SQL_SMALL_RESULT", "SQL_BIG_RESULT", "SQL_BUFFER_RESULT"}


INCOMPLETE = re.compile(r"missing for <class '[\w.]*?(\w+)'>")


class SqlProblem(ValueError):
    pass


# ---- the checks --------------------------------------------------------------------------


def is_sql(output: str, value: Any, ctx: Any) -> Any:
    return check(output, value, "is-sql")


def contains_sql(output: str, value: Any, ctx: Any) -> Any:
    """The first fenced block (```` ``` ```` or ```` ```sql ````), else the whole output, as ``is-sql``."""
    block = fenced(output)
    passed, reason = check(output if block is None else block, value, "contains-sql")
    return (passed, reason if block is None else f"in the fenced block: {reason}")


def check(sql: str, value: Any, kind: str) -> tuple[bool, str]:
    name, dialect, tables, columns = sql_options(kind, value)
    try:
        statements = parse(sql, name, dialect)
    except SqlProblem as exc:
        return (False, f"SQL statement does not conform to the provided {name} database syntax: {exc}")
    found_tables, found_columns = authorities(statements)
    try:
        problems = [p for p in (_unauthorized("table", found_tables, tables),
                                _unauthorized("column", found_columns, columns)) if p]
    except TimeoutError:
        return (False, f"checking the allowed tables and columns took over {MATCH_SECONDS:g} s; simplify the patterns")
    if problems:
        return (False, " ".join(problems))
    count = f"{len(statements)} statements" if len(statements) > 1 else "one statement"
    return (True, f"valid {name} SQL ({count})")


def fenced(text: str) -> str | None:
    """promptfoo's ```` /```(?:sql)?([^`]+)```/ ````: the text of the leftmost fence whose body has
    no backtick, less a leading ``sql``, trimmed; None if there is none."""
    start = text.find("```")
    while start >= 0:
        body = start + 3
        end = text.find("`", body)
        if end < 0:
            return None
        if end > body and text.startswith("```", end):
            inner = text[body:end]
            return (inner[3:] if inner.startswith("sql") and len(inner) > 3 else inner).strip()
        start = text.find("```", start + 1)
    return None


# ---- parsing -----------------------------------------------------------------------------


def _dialect(name: str) -> Any:
    """sqlglot's dialect (a few microseconds: not cached, so nothing outlives a re-import of
    sqlglot, as pytest's pytester does between in-process runs)."""
    from sqlglot.dialects.dialect import Dialect

    return Dialect.get_or_raise(name)


def parse(sql: str, name: str, dialect: str) -> list[Any]:
    """The statements of ``sql`` as sqlglot trees, or ``SqlProblem`` saying why it is not SQL of
    the database ``name`` (as written; ``dialect`` is sqlglot's)."""
    from sqlglot.errors import ParseError, TokenError

    if not sql.strip():
        raise SqlProblem("the output is empty")
    if len(sql) > MAX_CHARS:
        raise SqlProblem(f"it is {len(sql):,} characters long, and SQL over {MAX_CHARS:,} is not parsed")
    reader = _dialect(dialect)
    try:
        tokens = reader.tokenize(sql)
        _depth(tokens)
        quoted = _quoted_types()
        for chunk in _statements(tokens):
            _token_rules(chunk, name, quoted)
        with _quiet():
            trees = [t for t in reader.parser().parse(tokens, sql) if t is not None]
    except TokenError as exc:
        raise SqlProblem(f"cannot read it as {name} tokens ({_first_line(exc)})") from None
    except ParseError as exc:
        raise SqlProblem(_parse_error(exc)) from None
    except RecursionError:
        raise SqlProblem("it is nested too deeply to parse") from None
    if not trees:
        raise SqlProblem("it has no statement")
    for tree in trees:
        _tree_rules(tree, name, dialect)
    return trees


class _NoFallbackWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Falling back to parsing as a 'Command'" not in record.getMessage()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """sqlglot logs a warning where it keeps a statement unparsed; the verdict says so instead."""
    logger, quiet = logging.getLogger("sqlglot"), _NoFallbackWarning()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _parse_error(exc: Any) -> str:
    errors = getattr(exc, "errors", None) or []
    if not errors:
        return _first_line(exc)
    first = errors[0]
    near = (first.get("highlight") or "").strip()
    where = f" at line {first.get('line')}, column {first.get('col')}" if first.get("line") else ""
    what = first.get("description") or "syntax error"
    incomplete = INCOMPLETE.search(what)
    if incomplete:  # "Required keyword: 'this' missing for <class 'sqlglot.expressions.query.Where'>"
        what = f"an incomplete {incomplete.group(1).upper()}"
    return f"{what}{where}" + (f" near {near[:40]!r}" if near else "")


def _depth(tokens: list[Any]) -> None:
    from sqlglot.tokens import TokenType

    depth = 0
    for token in tokens:
        if token.token_type in (TokenType.L_PAREN, TokenType.L_BRACKET, TokenType.L_BRACE):
            depth += 1
            if depth > MAX_DEPTH:
                raise SqlProblem(f"parentheses are nested more than {MAX_DEPTH} deep (line {token.line})")
        elif token.token_type in (TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.R_BRACE):
            depth -= 1


def _statements(tokens: list[Any]) -> Iterator[list[Any]]:
    from sqlglot.tokens import TokenType

    chunk: list[Any] = []
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            if chunk:
                yield chunk
            chunk = []
        else:
            chunk.append(token)
    if chunk:
        yield chunk


def _token_rules(tokens: list[Any], name: str, quoted: frozenset[Any]) -> None:
    """The rules read from the tokens of one statement (string literals and comments are not
    tokens of their own text, so SQL-looking text inside them is never looked at)."""
    from sqlglot.tokens import TokenType

    db, words = name.lower(), ["" if t.token_type in quoted else t.text.upper() for t in tokens]
    first = tokens[0]
    if first.token_type == TokenType.FROM and db not in FROM_FIRST:
        raise SqlProblem(f"a statement starts with FROM (line {first.line}); start it with SELECT")
    if first.token_type == TokenType.DELETE and db not in DELETE_WITHOUT_FROM and not _has_top_from(tokens):
        raise SqlProblem(f"DELETE needs FROM in {name} (line {first.line}): DELETE FROM table WHERE ...")
    for i, token in enumerate(tokens):
        kind, word = token.token_type, words[i]
        if kind == TokenType.SELECT:
            _missing_comma(tokens, words, i)
        elif kind == TokenType.ILIKE and db in NO_ILIKE:
            raise SqlProblem(f"{name} has no ILIKE (line {token.line}); write LOWER(x) LIKE LOWER(y)")
        elif word == "LOCK" and words[i + 1:i + 4] == ["IN", "SHARE", "MODE"] and db not in SHARE_MODE:
            raise SqlProblem(f"LOCK IN SHARE MODE is MySQL's (line {token.line}); write FOR SHARE")
        elif (word == "GENERATE_SERIES" and db in NO_GENERATE_SERIES and i + 1 < len(tokens)
              and tokens[i + 1].token_type == TokenType.L_PAREN):
            raise SqlProblem(f"generate_series is PostgreSQL's, not {name}'s (line {token.line})")


def _quoted_types() -> frozenset[Any]:
    """Tokens whose text is a literal's or a quoted name's: ``'LOCK'`` is not the word LOCK."""
    from sqlglot.tokens import TokenType

    return frozenset(t for t in TokenType if t.name.endswith("_STRING") or t.name in ("STRING", "IDENTIFIER"))


def _has_top_from(tokens: list[Any]) -> bool:
    from sqlglot.tokens import TokenType

    depth = 0
    for token in tokens:
        if token.token_type == TokenType.L_PAREN:
            depth += 1
        elif token.token_type == TokenType.R_PAREN:
            depth -= 1
        elif token.token_type == TokenType.FROM and depth == 0:
            return True
    return False


def _missing_comma(tokens: list[Any], words: list[str], at: int) -> None:
    """``SELECT [modifiers] a b FROM``: two bare names and FROM right after SELECT."""
    from sqlglot.tokens import TokenType

    i = at + 1
    while i < len(tokens) and words[i] in MODIFIERS:
        i += 1
    if (i + 2 < len(tokens) and tokens[i].token_type == TokenType.VAR == tokens[i + 1].token_type
            and tokens[i + 2].token_type == TokenType.FROM):
        a, b = tokens[i].text, tokens[i + 1].text
        raise SqlProblem(f"'SELECT {a} {b} FROM' (line {tokens[i].line}) looks like a missing comma; write "
                         f"'{a}, {b}', or '{a} AS {b}' for an alias")


def _tree_rules(tree: Any, name: str, dialect: str) -> None:
    from sqlglot import exp

    if isinstance(tree, exp.Command):
        raise SqlProblem(f"sqlglot does not parse {str(tree.this).upper()} statements in {name}, so their "
                         "syntax is not checked")
    if not isinstance(tree, _statement_types()):
        raise SqlProblem(f"{tree.sql(dialect)[:60]!r} is an expression, not a statement")
    for node in tree.walk():
        if isinstance(node, exp.Select) and not node.expressions:
            raise SqlProblem("a SELECT selects nothing")
        if isinstance(node, exp.Update) and not node.expressions:
            raise SqlProblem("an UPDATE sets nothing")
    reserved = getattr(_dialect(dialect).generator_class, "RESERVED_KEYWORDS", None) or set()  # USABLE aside
    if reserved:
        for ident in tree.find_all(exp.Identifier):
            if not ident.quoted and ident.name.lower() in reserved and ident.name.lower() not in USABLE:
                raise SqlProblem(f"{ident.name!r} is a reserved word in {name}; quote it to use it as a name")


def _statement_types() -> tuple[type, ...]:
    from sqlglot import exp

    names = ("Query", "DML", "DDL", "Create", "Drop", "Alter", "TruncateTable", "Merge", "Show", "Describe", "Grant",
             "Revoke", "Transaction", "Commit", "Rollback", "Use", "Set", "Analyze", "Pragma", "Copy", "Cache",
             "Uncache", "Kill", "Refresh", "LoadData", "Comment")
    return tuple(getattr(exp, n) for n in names if isinstance(getattr(exp, n, None), type))


# ---- authorities -------------------------------------------------------------------------


def authorities(statements: list[Any]) -> tuple[list[str], list[str]]:
    """node-sql-parser's table and column authorities of the statements, in order, each once."""
    tables: dict[str, None] = {}
    columns: dict[str, None] = {}
    for tree in statements:
        for item in _table_authorities(tree):
            tables[item] = None
        for item in _column_authorities(tree):
            columns[item] = None
    return list(tables), list(columns)


def _kind(tree: Any) -> str:
    from sqlglot import exp

    if isinstance(tree, exp.Query):
        return "select"
    return {"TruncateTable": "truncate"}.get(type(tree).__name__, type(tree).__name__.lower())


def _own_kind(node: Any, tree: Any, kind: str) -> str:
    """The statement's kind, or ``select`` where ``node`` is inside a query of it."""
    from sqlglot import exp

    parent = node.parent
    while parent is not None and parent is not tree:
        if isinstance(parent, exp.Query):
            return "select"
        parent = parent.parent
    return kind


def _cte_names(tree: Any) -> set[str]:
    from sqlglot import exp

    return {cte.alias.lower() for cte in tree.find_all(exp.CTE) if cte.alias}


def _table_authorities(tree: Any) -> Iterator[str]:
    from sqlglot import exp

    kind, ctes = _kind(tree), _cte_names(tree)
    for table in tree.find_all(exp.Table):
        if not table.name or (not table.db and table.name.lower() in ctes):
            continue
        yield f"{_own_kind(table, tree, kind)}::{table.db or 'null'}::{table.name}"


def _aliases(tree: Any) -> dict[str, str]:
    from sqlglot import exp

    out: dict[str, str] = {}
    for table in tree.find_all(exp.Table):
        if table.name:
            out[table.name.lower()] = table.name
            if table.alias:
                out[table.alias.lower()] = table.name
    return out


def _column_authorities(tree: Any) -> Iterator[str]:
    from sqlglot import exp

    aliases = _aliases(tree)
    target = tree.this if isinstance(tree, exp.Insert | exp.Update | exp.Delete) else None
    if isinstance(target, exp.Schema):  # INSERT INTO t (a, b)
        for col in target.expressions:
            yield f"insert::{target.this.name}::{col.name}"
    elif isinstance(tree, exp.Insert) and isinstance(target, exp.Table):
        yield f"insert::{target.name}::(.*)"
    if isinstance(tree, exp.Delete):
        for table in [target, *(tree.args.get("tables") or [])]:
            if isinstance(table, exp.Table) and table.name:
                yield f"delete::{table.name}::(.*)"
    set_targets = set()
    if isinstance(tree, exp.Update):
        for assignment in tree.expressions:
            if isinstance(assignment.this, exp.Column):
                set_targets.add(id(assignment.this))
                yield f"update::{_qualifier(assignment.this, aliases)}::{assignment.this.name}"
    for node in tree.walk():
        if isinstance(node, exp.Column) and id(node) not in set_targets:
            name = "(.*)" if isinstance(node.this, exp.Star) else node.name
            yield f"select::{_qualifier(node, aliases)}::{name}"
        elif isinstance(node, exp.Star) and isinstance(node.parent, exp.Select):
            yield "select::null::(.*)"


def _qualifier(column: Any, aliases: dict[str, str]) -> str:
    table = column.table
    return aliases.get(table.lower(), table) if table else "null"


def _unauthorized(what: str, found: list[str], allowed: list[str] | None) -> str | None:
    """promptfoo's reason when some of ``found`` matches no ``allowed`` entry; an empty or
    absent list allows everything (node-sql-parser's whiteListCheck)."""
    if not allowed:
        return None
    import time

    import regex

    deadline = time.monotonic() + MATCH_SECONDS
    patterns = [regex.compile(e, regex.IGNORECASE) for e in _with_null_tables(allowed)]
    denied = []
    for authority in found:
        if not any(p.fullmatch(authority, timeout=max(deadline - time.monotonic(), 0.001)) for p in patterns):
            denied.append(authority if len(authority) <= 80 else authority[:77] + "...")
            if len(denied) == SHOWN:
                break
        if time.monotonic() > deadline:
            raise TimeoutError
    if not denied:
        return None
    return (f"SQL references unauthorized {what}(s). Found: [{', '.join(denied)}]. "
            f"Allowed: [{', '.join(allowed)}].")


def _with_null_tables(entries: list[str]) -> list[str]:
    """Each entry, and for ``s::t::c`` also ``s::null::c`` (promptfoo's normalization)."""
    out = list(entries)
    for entry in entries:
        parts = entry.split("::")
        if len(parts) == 3 and parts[1] != "null":
            out.append(f"{parts[0]}::null::{parts[2]}")
    return out

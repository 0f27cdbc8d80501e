"""CEQL, the query language of Open Connectors bulk jobs: the subset the documents hub answers.

    select * | <fields> from files | folders
        [where <cond> [and | or <cond>]...] [order by <field> [asc | desc]] [limit <n>]

`parse()` reads a query with a lark LALR grammar, checks it against the hub's record shape (the
entry `server.api.elements.render` builds) and compiles the where clause into closures once, so
`Query.matches` does no parsing per record. Anything outside the subset is a `BadRequest` naming the
part the user wrote; nothing is evaluated for a refused query. No aiohttp here.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lark import Lark, Token, Tree, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from .errors import BadRequest

# the record's fields, in the order the hub renders an entry
FIELDS: tuple[str, ...] = ("id", "name", "path", "directory", "size", "createdDate", "modifiedDate", "tags")
# what a condition may test, and what a query may be ordered by
CONDITION_FIELDS = ("path", "name", "size", "createdDate", "modifiedDate", "tags")
ORDER_FIELDS = ("id", "name", "path", "size", "createdDate", "modifiedDate")
OBJECTS = ("files", "folders")

# bounded work for hostile input: a query is a URL parameter, and nesting costs recursion here
MAX_QUERY_CHARS = 4000
MAX_DEPTH = 32
# the most of the user's text an error quotes
QUOTE_CHARS = 60

SUPPORTED = (
    "Supported: select * or a list of fields from files or folders, where conditions on path, name, size, "
    "createdDate, modifiedDate or tags with =, !=, <, >, like or in (...), joined by and/or and grouped "
    "with parentheses, order by one field asc or desc, and limit n."
)

# Keywords are string terminals: lark's lexer re-types a NAME spelling one (case-insensitively, as
# NAME is), so `orders` stays a name and `OR` is a keyword. OP takes more than the subset's four
# operators so that `<=` is refused by name rather than as a stray character.
GRAMMAR = r"""
    query: "select"i selection "from"i NAME where? order? limit?

    selection: STAR | NAME ("," NAME)*

    where: "where"i disjunction
    ?disjunction: conjunction ("or"i conjunction)*
    ?conjunction: term ("and"i term)*
    ?term: condition | "(" disjunction ")"
    condition: NAME OP value                        -> compare
             | NAME LIKE value                      -> like
             | NAME IN "(" (value ("," value)*)? ")" -> member
    ?value: STRING | NUMBER

    order: "order"i "by"i key ("," key)*
    key: NAME (ASC | DESC)?

    limit: "limit"i NUMBER

    LIKE: "like"i
    IN: "in"i
    ASC: "asc"i
    DESC: "desc"i
    OP: "<=" | ">=" | "<>" | "!=" | "==" | "=" | "<" | ">"
    STAR: "*"
    NAME: /[a-z_][a-z0-9_]*/i
    STRING: /'(?:[^']|'')*'/
    NUMBER: /[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)/

    %ignore /\s+/
"""

# ASCII: `[a-z]` with IGNORECASE would otherwise take the Kelvin sign and the long s as letters
_PARSER = Lark(
    GRAMMAR, start="query", parser="lalr", lexer="basic", propagate_positions=True, g_regex_flags=re.ASCII
)

Record = Mapping[str, Any]
Predicate = Callable[[Record], bool]


def _everything(record: Record) -> bool:
    return True


@dataclass(frozen=True)
class Query:
    """A parsed query. `matches` is the from and where clauses; a job sorts what matches with
    `sorted(..., key=query.sort_key, reverse=query.order_by[1])`, keeps `limit` and writes `project`."""

    text: str
    fields: tuple[str, ...] | None  # None for *
    object_name: str  # "files" or "folders"
    order_by: tuple[str, bool] | None  # (field, descending)
    limit: int | None
    # the compiled where clause (the directory test of `object_name` is `matches`' own)
    _where: Predicate = field(default=_everything, repr=False, compare=False)

    def matches(self, record: dict[str, Any]) -> bool:
        return bool(record.get("directory")) is (self.object_name == "folders") and self._where(record)

    def project(self, record: dict[str, Any]) -> dict[str, Any]:
        """The selected fields, in the order the select names them (the record itself for *)."""
        if self.fields is None:
            return record
        return {name: record.get(name) for name in self.fields}

    def sort_key(self, record: dict[str, Any]) -> Any:
        """An ascending key for `order_by`: absent or null values first, dates as instants, names and
        paths case-insensitively, numeric ids as numbers. Constant when the query has no order."""
        if self.order_by is None:
            return ()
        return _SORT_KEYS[self.order_by[0]](record.get(self.order_by[0]))


def parse(text: str) -> Query:
    """The query `text` means, or BadRequest naming the part outside the subset."""
    if len(text) > MAX_QUERY_CHARS:
        raise _refuse(
            f"The query is {len(text):,} characters long; at most {MAX_QUERY_CHARS:,} are accepted."
        )
    if not text.strip():
        raise _refuse("The query is empty.")
    _check_depth(text)
    try:
        tree = _PARSER.parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None
    return _Compiler(text).query(tree)


# ---- refusals ----------------------------------------------------------------------------------


def _refuse(reason: str) -> BadRequest:
    return BadRequest(f"{reason} {SUPPORTED}", title="Unsupported query.")


def _quoted(part: str) -> str:
    """The user's text as written, on one line and not too long to read."""
    part = re.sub(r"[\r\n\t\v\f]", " ", part)
    if len(part) > QUOTE_CHARS:
        part = part[: QUOTE_CHARS - 1] + "…"
    return f'"{part}"'


def _tokens(text: str) -> Iterator[Token]:
    """The query's tokens, up to the first character none begins with."""
    try:
        yield from _PARSER.lex(text)
    except UnexpectedInput:
        return


def _check_depth(text: str) -> None:
    depth = 0
    for token in _tokens(text):
        if token.type == "LPAR":
            depth += 1
            if depth > MAX_DEPTH:
                raise _refuse(f"The query nests parentheses deeper than {MAX_DEPTH} levels.")
        elif token.type == "RPAR":
            depth -= 1


# words of SQL (and of fuller CEQL) the subset leaves out: named as not supported, not as unexpected
_UNSUPPORTED_WORDS = frozenset(
    "distinct group having join inner left right outer full cross natural union intersect except not is "
    "null between offset exists as on top fetch case when escape ilike similar all any some".split()
)
# words that complete the one before them ("group by", "is not null", "left outer join")
_TRAILING_WORDS = frozenset("by join outer null not like in all".split())
_WORD = re.compile(r"[a-z_][a-z0-9_]*\Z", re.IGNORECASE)

_TERMINAL_WORDS = {
    "NAME": "a name",
    "STRING": "a string in single quotes",
    "NUMBER": "a number",
    "OP": "an operator",
    "STAR": '"*"',
    "COMMA": '","',
    "LPAR": '"("',
    "RPAR": '")"',
    "$END": "the end of the query",
}


def _expected(names: set[str]) -> str:
    words = sorted(_TERMINAL_WORDS.get(name, f'"{name.lower()}"') for name in names)
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]


def _syntax_error(text: str, exc: UnexpectedInput) -> BadRequest:
    if isinstance(exc, UnexpectedCharacters):
        at = exc.pos_in_stream or 0
        if text[at] == "'":
            return _refuse(f"The string {_quoted(text[at:])} has no closing quote.")
        stray = (text[at:].split(maxsplit=1) or [text[at]])[0]
        return _refuse(f"Unexpected {_quoted(stray)} at character {at + 1}.")
    if not isinstance(exc, UnexpectedToken):  # the LALR parser raises no other kind; kept total
        return _refuse("The query could not be read.")
    tokens = list(_tokens(text))
    expected = _expected(set(exc.expected))
    if exc.token.type == "$END":
        last = tokens[-1].value if tokens else ""
        return _refuse(f"The query ends early after {_quoted(last)}; expected {expected}.")
    index = next((i for i, token in enumerate(tokens) if token.start_pos == exc.token.start_pos), None)
    if index is None:
        return _refuse(f"Unexpected {_quoted(exc.token.value)}; expected {expected}.")
    token, before = tokens[index], tokens[index - 1] if index else None
    at = _start(token) + 1
    if token.type == "LPAR" and before is not None and _WORD.match(before.value):
        return _refuse(f"{_quoted(_call(text, tokens, index))}: functions are not supported.")
    if _WORD.match(token.value):
        if before is not None and before.value.lower() in _UNSUPPORTED_WORDS:
            index -= 1
        phrase = _phrase(text, tokens, index)
        if phrase.split()[0].lower() in _UNSUPPORTED_WORDS:
            return _refuse(f"{_quoted(phrase)} is not supported.")
        return _refuse(f"Unexpected {_quoted(phrase)} at character {at}; expected {expected}.")
    return _refuse(f"Unexpected {_quoted(token.value)} at character {at}; expected {expected}.")


def _start(token: Token) -> int:
    return token.start_pos or 0


def _end(token: Token) -> int:
    return token.end_pos or 0


def _call(text: str, tokens: list[Token], paren: int) -> str:
    """`count(*)`: the name before the parenthesis at `paren`, through its closing one."""
    depth, end = 0, len(text)
    for token in tokens[paren:]:
        depth += {"LPAR": 1, "RPAR": -1}.get(token.type, 0)
        if depth == 0:
            end = _end(token)
            break
    return text[_start(tokens[paren - 1]) : end]


def _phrase(text: str, tokens: list[Token], first: int) -> str:
    """The word at `first`, with the words that complete it ("group by", "is not null") when it is a
    keyword: a stray name ("files f join") is named alone."""
    last = first
    leads = tokens[first].type != "NAME" or tokens[first].value.lower() in _UNSUPPORTED_WORDS
    while leads and last + 1 < len(tokens) and tokens[last + 1].value.lower() in _TRAILING_WORDS:
        last += 1
    return text[_start(tokens[first]) : _end(tokens[last])]


# ---- values ------------------------------------------------------------------------------------


def _instant(value: Any) -> datetime | None:
    """An ISO 8601 date or date-time as an aware instant (no offset: UTC), or None."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _folded(value: Any) -> str | None:
    return value.casefold() if isinstance(value, str) else None


def _number(value: Any) -> int | float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


# how a record's value of each testable field reads for comparison (None: no value to compare)
_NORMAL: dict[str, Callable[[Any], Any]] = {
    "path": _folded,
    "name": _folded,
    "size": _number,
    "createdDate": _instant,
    "modifiedDate": _instant,
}


def _id_key(value: Any) -> tuple[Any, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        return (1, 0, value)
    if isinstance(value, str):
        return (1, 0, int(value)) if value.isascii() and value.isdecimal() else (1, 1, value.casefold())
    return (0,)


def _key_of(normal: Callable[[Any], Any]) -> Callable[[Any], tuple[Any, ...]]:
    def key(value: Any) -> tuple[Any, ...]:
        normalized = normal(value)
        return (0,) if normalized is None else (1, normalized)

    return key


_SORT_KEYS: dict[str, Callable[[Any], tuple[Any, ...]]] = {
    "id": _id_key,
    **{name: _key_of(_NORMAL[name]) for name in ORDER_FIELDS if name != "id"},
}


class _Like:
    """A `like` pattern (`%` any run, `_` one character) matched without backtracking: the pieces
    between `%`s are fixed-length regexes, the first anchored at the start, the last at the end,
    the others found leftmost in turn (which leaves the most room for the rest). A hostile pattern
    such as `%_%_%_…x` stays linear in the pieces, where one regex of `.*`s would not."""

    def __init__(self, pattern: str) -> None:
        pieces = pattern.split("%")
        self.exact = len(pieces) == 1
        self.head = self._compile(pieces[0])
        self.tail = self._compile(pieces[-1])
        self.tail_chars = len(pieces[-1])
        self.middle = [self._compile(piece) for piece in pieces[1:-1] if piece]

    @staticmethod
    def _compile(piece: str) -> re.Pattern[str]:
        return re.compile("".join("." if char == "_" else re.escape(char) for char in piece), re.DOTALL)

    def __call__(self, value: str) -> bool:
        if self.exact:
            return self.head.fullmatch(value) is not None
        found = self.head.match(value)
        if found is None:
            return False
        at, tail_at = found.end(), len(value) - self.tail_chars
        for piece in self.middle:
            found = piece.search(value, at, tail_at)
            if found is None:
                return False
            at = found.end()
        return tail_at >= at and self.tail.fullmatch(value, tail_at) is not None


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}


def _tags(record: Record) -> list[Any] | tuple[Any, ...]:
    tags = record.get("tags")
    return tags if isinstance(tags, list | tuple) else ()


# ---- the compiler ------------------------------------------------------------------------------


class _Compiler:
    """Checks a parse tree against the subset, in the order the query reads, and builds the Query."""

    def __init__(self, text: str) -> None:
        self.text = text

    def part(self, node: Tree[Token] | Token) -> str:
        if isinstance(node, Token):
            return str(node.value)
        return self.text[node.meta.start_pos : node.meta.end_pos]

    def refuse(self, node: Tree[Token] | Token, reason: str) -> BadRequest:
        return _refuse(f"{_quoted(self.part(node))}: {reason}")

    def query(self, tree: Tree[Token]) -> Query:
        selection, source, *clauses = tree.children
        assert isinstance(selection, Tree) and isinstance(source, Token)
        fields = self.selection(selection)
        object_name = source.value.lower()
        if object_name not in OBJECTS:
            raise self.refuse(source, "a query reads from files or from folders.")
        where: Predicate = _everything
        order_by, limit = None, None
        for clause in clauses:
            assert isinstance(clause, Tree)
            if clause.data == "where":
                (condition,) = clause.children
                assert isinstance(condition, Tree)
                where = self.condition(condition)
            elif clause.data == "order":
                order_by = self.order(clause)
            else:
                limit = self.limit(clause)
        return Query(self.text, fields, object_name, order_by, limit, where)

    def field(self, name: Token, allowed: tuple[str, ...], role: str) -> str:
        """The record field `name` spells (field names are case-insensitive), if `role` allows it."""
        canonical = next((known for known in FIELDS if known.lower() == name.value.lower()), None)
        if canonical is None:
            raise self.refuse(name, f"no such field; a record has {', '.join(FIELDS)}.")
        if canonical not in allowed:
            raise self.refuse(name, f"{role} {', '.join(allowed)}.")
        return canonical

    def selection(self, node: Tree[Token]) -> tuple[str, ...] | None:
        names = [child for child in node.children if isinstance(child, Token)]
        if names[0].type == "STAR":
            return None
        fields: list[str] = []
        for name in names:
            canonical = self.field(name, FIELDS, "select names")
            if canonical in fields:
                raise self.refuse(name, "the field is selected twice.")
            fields.append(canonical)
        return tuple(fields)

    def order(self, node: Tree[Token]) -> tuple[str, bool]:
        first, *more = node.children
        if more:
            raise self.refuse(more[0], "a second order by field is not supported; order by takes one.")
        assert isinstance(first, Tree)
        name, *direction = first.children
        assert isinstance(name, Token)
        canonical = self.field(name, ORDER_FIELDS, "a query can be ordered by")
        return canonical, any(isinstance(word, Token) and word.type == "DESC" for word in direction)

    def limit(self, node: Tree[Token]) -> int:
        (number,) = node.children
        assert isinstance(number, Token)
        if not (number.value.isascii() and number.value.isdecimal()):
            raise self.refuse(node, "limit takes a whole number of 0 or more.")
        return int(number.value)

    # -- where --

    def condition(self, node: Tree[Token]) -> Predicate:
        if node.data in ("disjunction", "conjunction"):
            parts = [self.condition(child) for child in node.children if isinstance(child, Tree)]
            return _any(parts) if node.data == "disjunction" else _all(parts)
        name, verb, *values = node.children
        assert isinstance(name, Token) and isinstance(verb, Token)
        field_name = self.field(name, CONDITION_FIELDS, "conditions test")
        operator_ = "in" if node.data == "member" else "like" if node.data == "like" else verb.value
        if operator_ not in (*_COMPARISONS, "like", "in"):
            raise self.refuse(verb, "the operators are =, !=, <, >, like and in (...).")
        if field_name == "tags" and operator_ in ("<", ">"):
            raise self.refuse(node, f"{operator_} does not apply to tags (=, !=, like and in do).")
        if operator_ == "like" and field_name not in ("path", "name", "tags"):
            raise self.refuse(node, "like applies to path, name and tags.")
        literals = [self.literal(field_name, value) for value in values if isinstance(value, Token)]
        if node.data == "member" and not literals:
            raise self.refuse(node, "in (...) needs at least one value.")
        if field_name == "tags":
            return _tags_test(operator_, literals)
        if operator_ == "like":
            return _like_test(field_name, _Like(literals[0]))
        normal = _NORMAL[field_name]
        if operator_ == "in":
            return _member_test(field_name, normal, frozenset(literals))
        return _compare_test(field_name, normal, _COMPARISONS[operator_], literals[0])

    def literal(self, field_name: str, value: Token) -> Any:
        """A value as `field_name` compares it: folded text, a number, an instant, a tag."""
        if field_name == "size":
            if value.type != "NUMBER":
                raise self.refuse(value, "size compares with a number.")
            try:
                return float(value.value) if "." in value.value else int(value.value)
            except ValueError:
                raise self.refuse(value, "not a number size can compare with.") from None
        if value.type != "STRING":
            raise self.refuse(value, f"{field_name} compares with a string in single quotes.")
        string = value.value[1:-1].replace("''", "'")
        if field_name in ("createdDate", "modifiedDate"):
            instant = _instant(string)
            if instant is None:
                raise self.refuse(
                    value,
                    f"{field_name} compares with an ISO 8601 date such as '2026-01-01' or "
                    "'2026-01-01T10:00:00Z'.",
                )
            return instant
        return string if field_name == "tags" else string.casefold()


def _any(parts: list[Predicate]) -> Predicate:
    def test(record: Record) -> bool:
        return any(part(record) for part in parts)

    return test


def _all(parts: list[Predicate]) -> Predicate:
    def test(record: Record) -> bool:
        return all(part(record) for part in parts)

    return test


def _tags_test(operator_: str, literals: list[Any]) -> Predicate:
    """Tags compare exactly: `=` has the tag, `!=` has it not, `in` has any, `like` some tag matches."""
    if operator_ in ("=", "!="):
        tag, present = literals[0], operator_ == "="

        def test(record: Record) -> bool:
            return (tag in _tags(record)) is present

        return test
    if operator_ == "in":
        wanted = frozenset(literals)
        return lambda record: not wanted.isdisjoint(_tags(record))
    like = _Like(literals[0])
    return lambda record: any(isinstance(tag, str) and like(tag) for tag in _tags(record))


def _like_test(name: str, like: _Like) -> Predicate:
    def test(record: Record) -> bool:
        value = record.get(name)
        return isinstance(value, str) and like(value.casefold())

    return test


def _member_test(name: str, normal: Callable[[Any], Any], wanted: frozenset[Any]) -> Predicate:
    def test(record: Record) -> bool:
        value = normal(record.get(name))
        return value is not None and value in wanted

    return test


def _compare_test(
    name: str, normal: Callable[[Any], Any], compare: Callable[[Any, Any], bool], literal: Any
) -> Predicate:
    def test(record: Record) -> bool:
        value = normal(record.get(name))
        return value is not None and compare(value, literal)

    return test

"""The search language: the documented subset of Laserfiche's search syntax, read by a lark LALR
grammar into a small tree of clauses (`Basic`, `Name`, `LookIn`, `Tags`, `FieldTest`) joined by
`All` (`&`) and `Any` (`|`).

    {LF:Basic ~= "words", option="DFANLT"}    {LF:Name="pat*"}    {LF:LookIn="\\Folder"}
    {LF:Tags="name"}    {[Template]:[Field]="value"} (=, <, >, <=, >=; * and ? in = values)
    {[]:[Field]="value"} (any template)    {[Template]} (entries with the template)

Anything else is a `BadRequest` whose detail names the part outside the subset, quoting what the
user wrote. No aiohttp, no disk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lark import Lark, Token, Tree, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from ..errors import BadRequest

# bounded work for hostile input: nesting costs recursion
MAX_COMMAND_CHARS = 4000
MAX_DEPTH = 32
QUOTE_CHARS = 60
# what LF:Basic's option letters select (absent: all of them); A (annotations) is taken and finds
# nothing, as this repository has no annotations
OPTION_LETTERS = {
    "D": "documents",
    "F": "folders",
    "N": "names",
    "L": "field values and tag names",
    "T": "the text of text-like documents",
    "A": "annotations (none here)",
}
SUPPORTED = (
    'Supported: {LF:Basic ~= "words", option="DFANLT"}, {LF:Name="pattern"}, {LF:LookIn="\\Folder"}, '
    '{LF:Tags="name"}, {[Template]:[Field]="value"} (=, <, >, <=, >=) and {[Template]}, joined by & '
    "and | and grouped with parentheses."
)

GRAMMAR = r"""
    ?start: disjunction
    ?disjunction: conjunction ("|" conjunction)*
    ?conjunction: term ("&" term)*
    ?term: clause | "(" disjunction ")"
    clause: "{" PROPERTY (OP value)? ("," option)* "}"      -> lf
          | "{" BRACKET (":" BRACKET (OP value)?)? "}"      -> field
    option: WORD OP value
    ?value: STRING

    PROPERTY.2: /LF:[A-Za-z]+/i
    BRACKET: /\[[^\[\]]*\]/
    OP: "~=" | "<=" | ">=" | "<>" | "!=" | "=" | "<" | ">"
    WORD: /[A-Za-z_][A-Za-z0-9_]*/
    STRING: /"(?:[^"]|"")*"/

    %ignore /\s+/
"""

_PARSER = Lark(GRAMMAR, parser="lalr", lexer="basic", propagate_positions=True, g_regex_flags=re.ASCII)


# ---- what a command means -------------------------------------------------------------------


@dataclass(frozen=True)
class Basic:
    """`{LF:Basic ~= "words"}`: every word is in the entry's name, a field value or tag name, or
    its text (the option letters choose which, and documents and/or folders)."""

    words: tuple[str, ...]
    names: bool = True
    fields: bool = True
    text: bool = True
    documents: bool = True
    folders: bool = True


@dataclass(frozen=True)
class Name:
    pattern: str  # the whole name, * and ? as wildcards


@dataclass(frozen=True)
class LookIn:
    parts: tuple[str, ...]  # the folder's names from the root; () is the root


@dataclass(frozen=True)
class Tags:
    pattern: str


@dataclass(frozen=True)
class FieldTest:
    """`{[Template]:[Field] op "value"}`; an empty template is any; no field: has the template."""

    template: str
    field: str | None
    op: str = "="
    value: str = ""


@dataclass(frozen=True)
class All:
    parts: tuple[Clause, ...]


@dataclass(frozen=True)
class Any:
    parts: tuple[Clause, ...]


Clause = Basic | Name | LookIn | Tags | FieldTest | All | Any


def parse(command: str) -> Clause:
    """What `command` means, or BadRequest naming the part outside the subset."""
    if len(command) > MAX_COMMAND_CHARS:
        raise _refuse(f"The search command is {len(command):,} characters; at most {MAX_COMMAND_CHARS:,}.")
    if not command.strip():
        raise _refuse("The search command is empty.")
    if command.count("(") > MAX_DEPTH:
        raise _refuse(f"The search command nests parentheses deeper than {MAX_DEPTH} levels.")
    try:
        tree = _PARSER.parse(command)
    except UnexpectedInput as exc:
        raise _syntax_error(command, exc) from None
    return _Reader(command).clause(tree)


# ---- refusals -----------------------------------------------------------------------------------


def _refuse(reason: str) -> BadRequest:
    return BadRequest(f"{reason} {SUPPORTED}", title="Unsupported search command.")


def _quoted(part: str) -> str:
    part = re.sub(r"\s", " ", part)
    return f"'{part[: QUOTE_CHARS - 1]}…'" if len(part) > QUOTE_CHARS else f"'{part}'"


# what a stray character is, when it is one of Laserfiche's own operators the subset leaves out
_UNSUPPORTED_CHARS = {"-": "negation (-)", "!": "negation (!)", "^": "exclusion (^)", "~": "proximity (~)"}


def _syntax_error(command: str, exc: UnexpectedInput) -> BadRequest:
    if isinstance(exc, UnexpectedCharacters):
        at = exc.pos_in_stream or 0
        char = command[at]
        if char == '"':
            return _refuse(f"The string {_quoted(command[at:])} has no closing quote.")
        stray = (command[at:].split(maxsplit=1) or [char])[0]
        what = _UNSUPPORTED_CHARS.get(char)
        if what is not None:
            return _refuse(f"{_quoted(stray)} at character {at + 1}: {what} is not supported.")
        return _refuse(f"Unexpected {_quoted(stray)} at character {at + 1}.")
    if isinstance(exc, UnexpectedToken):
        if exc.token.type == "$END":
            return _refuse("The search command ends early: a clause or a closing } or ) is missing.")
        at = (exc.token.start_pos or 0) + 1
        if exc.token.type == "WORD" and exc.token.value.lower() in ("and", "or", "not"):
            return _refuse(
                f"{_quoted(exc.token.value)} at character {at} is not supported: join clauses with & (and) "
                "or | (or); there is no negation."
            )
        if exc.token.type in ("LBRACE", "LPAR") and exc.token.start_pos:
            return _refuse(f"Two clauses without & or | between them, at character {at}.")
        return _refuse(f"Unexpected {_quoted(exc.token.value)} at character {at}.")
    return _refuse("The search command could not be read.")


def _unquote(token: Token) -> str:
    return str(token.value)[1:-1].replace('""', '"')


class _Reader:
    """Checks a parse tree against the subset and builds its clauses."""

    def __init__(self, command: str) -> None:
        self.command = command

    def refuse(self, node: Tree[Token], reason: str) -> BadRequest:
        assert node.meta.start_pos is not None
        part = self.command[node.meta.start_pos : node.meta.end_pos]
        return _refuse(f"{_quoted(part)}: {reason}")

    def clause(self, node: Tree[Token] | Token) -> Clause:
        assert isinstance(node, Tree)
        if node.data in ("disjunction", "conjunction"):
            parts = tuple(self.clause(child) for child in node.children)
            return Any(parts) if node.data == "disjunction" else All(parts)
        if node.data == "field":
            return self.field(node)
        return self.lf(node)

    def options(self, node: Tree[Token], allowed: tuple[str, ...]) -> dict[str, str]:
        found: dict[str, str] = {}
        for option in node.children:
            if isinstance(option, Tree) and option.data == "option":
                word, op, value = option.children
                assert isinstance(word, Token) and isinstance(op, Token) and isinstance(value, Token)
                key = word.value.lower()
                if op.value != "=":
                    raise self.refuse(option, f"an option is set with =, not {op.value}.")
                if key not in allowed:
                    takes = f"takes only {', '.join(allowed)}" if allowed else "takes no options"
                    raise self.refuse(
                        option, f"the option {word.value!r} is not supported; this clause {takes}."
                    )
                found[key] = _unquote(value)
        return found

    def lf(self, node: Tree[Token]) -> Clause:
        tokens = [child for child in node.children if isinstance(child, Token)]
        prop = tokens[0].value.split(":", 1)[1].lower()
        op, value = (tokens[1].value, _unquote(tokens[2])) if len(tokens) > 1 else (None, None)
        if prop == "basic":
            if op != "~=" or value is None:
                raise self.refuse(node, 'LF:Basic takes ~= and a quoted string: {LF:Basic ~= "words"}.')
            return self.basic(node, value, self.options(node, ("option",)).get("option"))
        if prop not in ("name", "lookin", "tags"):
            raise self.refuse(node, f"the property {tokens[0].value!r} is not supported.")
        self.options(node, ())
        if op != "=" or value is None:
            raise self.refuse(
                node, f'{tokens[0].value} takes = and a quoted string: {{{tokens[0].value}="..."}}.'
            )
        if prop == "lookin":
            trimmed = value.strip("\\")
            return LookIn(tuple(trimmed.split("\\")) if trimmed else ())
        if not value:
            raise self.refuse(node, "the value is empty.")
        return Name(value) if prop == "name" else Tags(value)

    def basic(self, node: Tree[Token], text: str, option: str | None) -> Basic:
        words = tuple(w for w in re.split(r"[^\w*?]+", text) if w.strip("*?"))
        if not words:
            raise self.refuse(node, "LF:Basic needs at least one word to find.")
        letters = set((option if option is not None else "".join(OPTION_LETTERS)).upper())
        unknown = sorted(letters - set(OPTION_LETTERS))
        if unknown:
            known = ", ".join(f"{k} ({v})" for k, v in OPTION_LETTERS.items())
            raise self.refuse(
                node, f"the option letters {''.join(unknown)!r} are not supported; known: {known}."
            )
        sources = letters & set("NLT")
        kinds = letters & set("DF")
        return Basic(
            tuple(w.casefold() for w in words),
            names="N" in sources or not sources,
            fields="L" in sources or not sources,
            text="T" in sources or not sources,
            documents="D" in kinds or not kinds,
            folders="F" in kinds or not kinds,
        )

    def field(self, node: Tree[Token]) -> FieldTest:
        tokens = [child for child in node.children if isinstance(child, Token)]
        template = tokens[0].value[1:-1].strip()
        if len(tokens) == 1:
            if not template:
                raise self.refuse(node, "{[]} names no template: write {[Template]}.")
            return FieldTest(template, None)
        field = tokens[1].value[1:-1].strip()
        if not field:
            raise self.refuse(node, 'a field search names its field: {[Template]:[Field]="value"}.')
        if len(tokens) == 2:
            raise self.refuse(node, 'a field search compares with a value: {[Template]:[Field]="value"}.')
        op, value = tokens[2].value, _unquote(tokens[3])
        if op not in ("=", "<", ">", "<=", ">="):
            raise self.refuse(
                node, f"the operator {op!r} is not supported for fields; use =, <, >, <= or >=."
            )
        return FieldTest(template, field, op, value)

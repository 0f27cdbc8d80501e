"""Matching one entry against a parsed search, and the context hits that say why it matched.

A search is compiled once against the catalog (`compile_search`: unknown templates and fields, and
values that do not fit their field, are a 400 then), into a tree of tests. Each test takes a
`Candidate` (an entry, with its metadata and its text read only when a test needs them) and
answers None (no match) or the hits it found (a match may have none: LookIn). Full text is read
only from text-like documents (`TEXT_EXTENSIONS`); other documents match by name and metadata.
Blocking (the text is read from disk); no aiohttp.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import orjson

from .. import fsops
from ..errors import BadRequest
from ..metadata.catalog import Catalog, FieldDefinition
from ..metadata.values import ValueProblem
from ..repository import Entry
from . import grammar

# documents whose bytes are read as text (UTF-8) by LF:Basic
TEXT_EXTENSIONS = frozenset({"txt", "md", "csv", "json", "xml", "html", "htm"})
# the most of a document's text that is read (a larger document is searched in its first part)
MAX_TEXT_BYTES = 8 * 1024 * 1024
# characters of surrounding text each side of a hit
CONTEXT_CHARS = 40
# the most hits one entry reports
MAX_HITS = 1000


@dataclass(frozen=True)
class Hit:
    """One context hit: what kind of thing matched, the text around it, where the match is in that
    text, and (documents) where the context starts in the document's text."""

    hit_type: str  # Name, Field, Edoc or Prop
    context: str
    offset: int
    length: int
    field_name: str = ""
    page_offset: int = 0


@dataclass
class Candidate:
    """An entry being matched: its metadata (field values by field name, tag names) as the walk
    read them for its page, and its text, read on first need."""

    entry: Entry
    fields: dict[str, list[str]] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    template: str = ""  # its template's name
    root_fd: int = -1
    _text: str | None = None
    _read: bool = False

    def text(self) -> str | None:
        """The document's text if it is text-like (its first MAX_TEXT_BYTES), else None."""
        entry = self.entry
        if self._read:
            return self._text
        self._read = True
        if entry.is_dir or entry.target is not None or entry.extension.lower() not in TEXT_EXTENSIONS:
            return None
        try:
            with fsops.folder(self.root_fd, entry.parts[:-1]) as folder_fd:
                fd = fsops.open_file(folder_fd, entry.name)
            try:
                data = os.pread(fd, MAX_TEXT_BYTES, 0)
            finally:
                os.close(fd)
        except (fsops.Gone, OSError):
            return None  # (gone since it was listed: nothing to read)
        self._text = data.decode("utf-8", errors="replace")
        return self._text


# a compiled test: None for no match, else the hits (all of them when `every`, else at least one
# per matching part)
Test = Callable[[Candidate, bool], list[Hit] | None]


@dataclass(frozen=True)
class Search:
    """A compiled search: its test, what the walk must read for it, and the subtree it is bound to."""

    test: Test
    needs_values: bool
    look_in: tuple[str, ...] = ()

    def match(self, candidate: Candidate, every: bool = False) -> list[Hit] | None:
        return self.test(candidate, every)


def compile_search(clause: grammar.Clause, catalog: Catalog) -> Search:
    """`clause` as a Search over entries described by `catalog`; 400 for a template or field the
    catalog lacks, or a value that cannot be one of its field's."""
    compiler = _Compiler(catalog)
    test = compiler.test(clause)
    return Search(test, compiler.needs_values, _bound(clause))


def _bound(clause: grammar.Clause) -> tuple[str, ...]:
    """The folder every match is below (the walk starts there): the LookIn of a top-level &."""
    parts = clause.parts if isinstance(clause, grammar.All) else (clause,)
    bounds = [p.parts for p in parts if isinstance(p, grammar.LookIn)]
    return max(bounds, key=len) if bounds else ()


def values_of(
    conn: sqlite3.Connection,
    catalog: Catalog,
    tag_name: Callable[[int], str | None],
    entry_ids: Sequence[int],
) -> dict[int, tuple[dict[str, list[str]], list[str]]]:
    """The field values (by field name) and tag names of many entries, from the store (those with
    none left out); under the store's lock."""
    found: dict[int, tuple[dict[str, list[str]], list[str]]] = {}
    for start in range(0, len(entry_ids), 900):
        chunk = list(entry_ids[start : start + 900])
        marks = ",".join("?" * len(chunk))
        for entry_id, fields, tags in conn.execute(
            f"SELECT entry_id, fields, tags FROM entry_values WHERE entry_id IN ({marks})", chunk
        ):
            named = {
                d.name: values
                for field_id, values in orjson.loads(fields).items()
                if (d := catalog.field(int(field_id))) is not None
            }
            found[entry_id] = (named, [n for t in orjson.loads(tags) if (n := tag_name(t)) is not None])
    return found


def wildcard(pattern: str, whole_word: bool = False) -> re.Pattern[str]:
    """`*` any run, `?` one character (of a word, for words), case-insensitive."""
    any_run, one = (r"\w*", r"\w") if whole_word else (".*", ".")
    body = "".join(any_run if c == "*" else one if c == "?" else re.escape(c) for c in pattern)
    if whole_word:
        return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)
    return re.compile(body, re.IGNORECASE | re.DOTALL)


def _around(text: str, start: int, end: int, hit_type: str, field_name: str = "") -> Hit:
    """A hit with up to CONTEXT_CHARS of text either side (white space shown as spaces)."""
    left = max(0, start - CONTEXT_CHARS)
    context = re.sub(r"\s", " ", text[left : end + CONTEXT_CHARS])
    return Hit(hit_type, context, start - left, end - start, field_name, left)


class _Compiler:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.needs_values = False

    def test(self, clause: grammar.Clause) -> Test:
        if isinstance(clause, grammar.All | grammar.Any):
            return _join(
                [self.test(part) for part in clause.parts], every_part=isinstance(clause, grammar.All)
            )
        if isinstance(clause, grammar.Basic):
            self.needs_values = self.needs_values or clause.fields
            return _basic(clause)
        if isinstance(clause, grammar.Name):
            return _name(wildcard(clause.pattern))
        if isinstance(clause, grammar.LookIn):
            return _look_in(tuple(p.casefold() for p in clause.parts))
        self.needs_values = True
        if isinstance(clause, grammar.Tags):
            return _tags(wildcard(clause.pattern))
        return self.field(clause)

    def field(self, clause: grammar.FieldTest) -> Test:
        template = None
        if clause.template:
            template = self.catalog.template_named(clause.template)
            if template is None:
                raise BadRequest(f"The search names the template {clause.template!r}, which is not defined.")
        if clause.field is None:
            assert template is not None
            name = template.name
            return lambda c, every: [Hit("Prop", name, 0, len(name))] if c.template == name else None
        definition = self.catalog.field_named(clause.field)
        if definition is None:
            raise BadRequest(f"The search names the field {clause.field!r}, which is not defined.")
        return _field(
            template.name if template else None, definition, clause.op, self.value(definition, clause)
        )

    def value(self, definition: FieldDefinition, clause: grammar.FieldTest) -> str:
        if clause.op == "=" or not clause.value:
            return clause.value
        try:
            return definition.check(clause.value) if definition.type != "String" else clause.value
        except ValueProblem as exc:
            raise BadRequest(f"The value compared with field {definition.name!r} {exc}.") from None


def _join(tests: list[Test], every_part: bool) -> Test:
    def test(candidate: Candidate, every: bool) -> list[Hit] | None:
        hits: list[Hit] = []
        matched = False
        for part in tests:
            found = part(candidate, every)
            if found is None and every_part:
                return None
            if found is not None:
                matched = True
                hits += found
                if not every_part and not every:
                    break
        return hits[:MAX_HITS] if matched else None

    return test


def _basic(clause: grammar.Basic) -> Test:
    patterns = [wildcard(word, whole_word=True) for word in clause.words]

    def test(candidate: Candidate, every: bool) -> list[Hit] | None:
        entry = candidate.entry
        if not (clause.folders if entry.is_dir else clause.documents):
            return None
        sources: list[tuple[str, str, str]] = []  # (hit type, text, field name)
        if clause.names:
            sources.append(("Name", entry.name, ""))
        if clause.fields:
            sources += [("Field", v, name) for name, values in candidate.fields.items() for v in values]
            sources += [("Prop", tag, "") for tag in candidate.tags]
        hits: list[Hit] = []
        for pattern in patterns:
            found = _find(pattern, sources, every)
            if (not found or every) and clause.text and (text := candidate.text()) is not None:
                for match in pattern.finditer(text):
                    found.append(_around(text, match.start(), match.end(), "Edoc"))
                    if not every or len(found) >= MAX_HITS:
                        break
            if not found:
                return None
            hits += found
        return hits[:MAX_HITS]

    return test


def _find(pattern: re.Pattern[str], sources: list[tuple[str, str, str]], every: bool) -> list[Hit]:
    found = []
    for hit_type, text, field_name in sources:
        for match in pattern.finditer(text):
            found.append(_around(text, match.start(), match.end(), hit_type, field_name))
            if not every:
                return found
    return found


def _name(pattern: re.Pattern[str]) -> Test:
    def test(candidate: Candidate, every: bool) -> list[Hit] | None:
        name = candidate.entry.name
        return [Hit("Name", name, 0, len(name))] if pattern.fullmatch(name) else None

    return test


def _look_in(parts: tuple[str, ...]) -> Test:
    depth = len(parts)

    def test(candidate: Candidate, every: bool) -> list[Hit] | None:
        own = candidate.entry.parts
        below = len(own) > depth and tuple(p.casefold() for p in own[:depth]) == parts
        return [] if below else None

    return test


def _tags(pattern: re.Pattern[str]) -> Test:
    def test(candidate: Candidate, every: bool) -> list[Hit] | None:
        hits = [Hit("Prop", tag, 0, len(tag)) for tag in candidate.tags if pattern.fullmatch(tag)]
        return hits or None

    return test


def _typed(definition: FieldDefinition, value: str) -> Decimal | str:
    if definition.type in ("Number", "LongInteger"):
        try:
            return Decimal(value)
        except InvalidOperation:
            return value
    return value.casefold() if definition.type in ("String", "List") else value


_COMPARE: dict[str, Callable[[object, object], bool]] = {
    "<": lambda a, b: a < b,  # type: ignore[operator]
    ">": lambda a, b: a > b,  # type: ignore[operator]
    "<=": lambda a, b: a <= b,  # type: ignore[operator]
    ">=": lambda a, b: a >= b,  # type: ignore[operator]
}


def _field(template: str | None, definition: FieldDefinition, op: str, value: str) -> Test:
    name = definition.name
    pattern = wildcard(value)
    wanted = _typed(definition, value)

    def fits(found: str) -> bool:
        if op == "=":
            return pattern.fullmatch(found) is not None
        have = _typed(definition, found)
        if type(have) is not type(wanted):
            return False
        return _COMPARE[op](have, wanted)

    def test(candidate: Candidate, every: bool) -> list[Hit] | None:
        if template is not None and candidate.template != template:
            return None
        values = candidate.fields.get(name, [])
        if not value and op == "=":
            return [] if not values else None  # (= "": the field has no value)
        hits = [Hit("Field", v, 0, len(v), name) for v in values if fits(v)]
        return hits or None

    return test

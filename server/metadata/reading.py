"""Reading the catalog file: TOML parsed, then every table checked, with the line of each mistake."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .catalog import (
    AUDIT_EVENT_TYPES,
    DEFAULT_STRING_LENGTH,
    MAX_CATALOG_ID,
    MAX_STRING_LENGTH,
    AuditReason,
    Catalog,
    CatalogError,
    FieldDefinition,
    LinkDefinition,
    Seed,
    SeedLink,
    TagDefinition,
    TemplateDefinition,
)
from .values import FIELD_TYPES, ValueProblem

_COLOR = re.compile(r"^#([0-9A-Fa-f]{2})([0-9A-Fa-f]{2})([0-9A-Fa-f]{2})$")


def load_catalog(path: Path, required: bool = False) -> Catalog:
    """The catalog in `path`; an absent file is an empty catalog unless `required` (named by
    --catalog). CatalogError for any mistake."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise CatalogError(path, None, "no such file (named by --catalog)") from None
        return Catalog(source=None)
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(path, None, f"cannot be read: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"at line (\d+)", str(exc))
        raise CatalogError(path, int(line.group(1)) if line else None, f"is not valid TOML: {exc}") from None
    return _Reader(path, text).read(data)


class _Reader:
    """Turns the parsed TOML into a Catalog, checking everything, and says where a mistake is."""

    TABLES = ("field", "template", "tag", "link", "audit_reason", "entry")

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()
        self._where: tuple[str, int] = ("", 0)

    # ---- where -------------------------------------------------------------------------

    def _table_line(self, table: str, index: int) -> int | None:
        """The line of the `index`-th `[[table]]` header."""
        header = re.compile(rf"^\s*\[\[\s*{re.escape(table)}\s*\]\]")
        seen = -1
        for number, line in enumerate(self.lines, 1):
            if header.match(line):
                seen += 1
                if seen == index:
                    return number
        return None

    def _key_line(self, key: str | None) -> int | None:
        """The line of `key = ` within the table being read (else the table's header)."""
        table, index = self._where
        start = self._table_line(table, index) if table in self.TABLES else None
        if start is None:
            header = re.compile(rf"^\s*\[\s*{re.escape(table)}[\].]")
            start = next((n for n, line in enumerate(self.lines, 1) if header.match(line)), None)
        if start is None or key is None:
            return start
        pattern = re.compile(rf'^\s*(?:{re.escape(key)}|"{re.escape(key)}"|\'{re.escape(key)}\')\s*=')
        for number in range(start + 1, len(self.lines) + 1):
            line = self.lines[number - 1]
            if re.match(r"^\s*\[", line):
                break
            if pattern.match(line):
                return number
        return start

    def fail(self, message: str, key: str | None = None) -> CatalogError:
        table, index = self._where
        what = f"[[{table}]] #{index + 1}" if table in self.TABLES else f"[{table}]" if table else ""
        return CatalogError(self.path, self._key_line(key), f"{what}: {message}" if what else message)

    # ---- typed members -----------------------------------------------------------------

    def _get(self, table: Mapping[str, Any], key: str, kind: type, default: Any = None) -> Any:
        value = table.get(key, default)
        if value is None:
            raise self.fail(f"'{key}' is required", key)
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise self.fail(f"'{key}' must be a whole number, got {value!r}", key)
        if not isinstance(value, kind):
            raise self.fail(f"'{key}' must be a {kind.__name__}, got {value!r}", key)
        return value

    def _strings(self, table: Mapping[str, Any], key: str) -> tuple[str, ...]:
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(f"'{key}' must be a list of strings", key)
        return tuple(value)

    def _known_keys(self, table: Mapping[str, Any], *keys: str) -> None:
        for key in table:
            if key not in keys:
                raise self.fail(f"unknown key '{key}' (expected one of: {', '.join(keys)})", key)

    def _tables(self, data: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
        tables = data.get(name, [])
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            self._where = (name, 0)
            raise self.fail(f"'{name}' must be written as [[{name}]] tables")
        return tables

    def _id_and_name(
        self, table: Mapping[str, Any], seen: dict[Any, int], names: set[str]
    ) -> tuple[int, str]:
        item_id = self._get(table, "id", int)
        if not 1 <= item_id <= MAX_CATALOG_ID:
            raise self.fail(f"'id' must be from 1 to {MAX_CATALOG_ID}, got {item_id}", "id")
        if item_id in seen:
            raise self.fail(f"id {item_id} is already taken by [[{self._where[0]}]] #{seen[item_id]}", "id")
        seen[item_id] = self._where[1] + 1
        name = self._get(table, "name", str) if "name" in table or self._where[0] != "link" else ""
        if "name" in table:
            if not name.strip() or not name.isprintable():
                raise self.fail("'name' must be printable and not blank", "name")
            if name.casefold() in names:
                raise self.fail(f"the name {name!r} is already taken", "name")
            names.add(name.casefold())
        return item_id, name

    # ---- the catalog -------------------------------------------------------------------

    def read(self, data: Mapping[str, Any]) -> Catalog:
        unknown = sorted(set(data) - {*self.TABLES, "attributes"})
        if unknown:
            raise CatalogError(
                self.path,
                self._key_line_top(unknown[0]),
                f"unknown table '{unknown[0]}' (expected: {', '.join(self.TABLES)}, attributes)",
            )
        fields = tuple(self._each(data, "field", self._field))
        by_name = {d.name.casefold(): d for d in fields}
        templates = tuple(self._each(data, "template", lambda t: self._template(t, by_name)))
        tags = tuple(self._each(data, "tag", self._tag))
        links = tuple(self._each(data, "link", self._link))
        reasons = tuple(self._each(data, "audit_reason", self._audit_reason))
        everyone, per_user = self._attributes(data.get("attributes", {}))
        catalog = Catalog(fields, templates, tags, links, reasons, everyone, per_user, source=self.path)
        seeds = tuple(self._each(data, "entry", lambda t: self._seed(t, catalog)))
        return Catalog(fields, templates, tags, links, reasons, everyone, per_user, seeds, self.path)

    def _key_line_top(self, key: str) -> int | None:
        pattern = re.compile(rf"^\s*(\[+\s*)?{re.escape(key)}\b")
        return next((n for n, line in enumerate(self.lines, 1) if pattern.match(line)), None)

    def _each(self, data: Mapping[str, Any], name: str, read: Any) -> list[Any]:
        self._seen: dict[Any, int] = {}
        self._names: set[str] = set()
        items = []
        for index, table in enumerate(self._tables(data, name)):
            self._where = (name, index)
            items.append(read(table))
        self._where = ("", 0)
        return items

    def _field(self, t: Mapping[str, Any]) -> FieldDefinition:
        self._known_keys(
            t, "id", "name", "type", "description", "length", "constraint", "constraint_error",
            "values", "multi_value", "default",
        )  # fmt: skip
        field_id, name = self._id_and_name(t, self._seen, self._names)
        kind = self._get(t, "type", str)
        if kind not in FIELD_TYPES:
            raise self.fail(f"'type' must be one of {', '.join(FIELD_TYPES)}, got {kind!r}", "type")
        is_string = kind == "String"
        for key in ("length", "constraint", "constraint_error"):
            if key in t and not is_string:
                raise self.fail(f"'{key}' is for String fields only", key)
        if "values" in t and kind != "List":
            raise self.fail("'values' is for List fields only", "values")
        length = self._get(t, "length", int, DEFAULT_STRING_LENGTH) if is_string else 0
        if is_string and not 1 <= length <= MAX_STRING_LENGTH:
            raise self.fail(f"'length' must be from 1 to {MAX_STRING_LENGTH}, got {length}", "length")
        constraint = self._get(t, "constraint", str, "")
        if constraint:
            try:
                re.compile(constraint)
            except re.error as exc:
                raise self.fail(
                    f"'constraint' is not a valid regular expression: {exc}", "constraint"
                ) from None
        values = self._strings(t, "values")
        if kind == "List" and not values:
            raise self.fail("a List field needs 'values', the choices it offers", "values")
        definition = FieldDefinition(
            id=field_id,
            name=name,
            type=kind,
            description=self._get(t, "description", str, ""),
            length=length,
            constraint=constraint,
            constraint_error=self._get(t, "constraint_error", str, ""),
            list_values=values,
            is_multi_value=self._get(t, "multi_value", bool, False),
        )
        default = self._get(t, "default", str, "")
        if default:
            try:
                default = definition.check(default)
            except ValueProblem as exc:
                raise self.fail(f"'default' {exc}", "default") from None
        return FieldDefinition(**{**definition.__dict__, "default_value": default})

    def _template(self, t: Mapping[str, Any], fields: Mapping[str, FieldDefinition]) -> TemplateDefinition:
        self._known_keys(t, "id", "name", "description", "color", "fields", "required")
        template_id, name = self._id_and_name(t, self._seen, self._names)
        members: list[int] = []
        for field_name in self._strings(t, "fields"):
            found = fields.get(field_name.casefold())
            if found is None:
                raise self.fail(f"'fields' names {field_name!r}, which no [[field]] defines", "fields")
            if found.id in members:
                raise self.fail(f"'fields' names {field_name!r} twice", "fields")
            members.append(found.id)
        required = set()
        for field_name in self._strings(t, "required"):
            found = fields.get(field_name.casefold())
            if found is None or found.id not in members:
                raise self.fail(f"'required' names {field_name!r}, which is not in its 'fields'", "required")
            required.add(found.id)
        color = (0, 0, 0)
        if "color" in t:
            match = _COLOR.match(self._get(t, "color", str))
            if match is None:
                raise self.fail(f"'color' must be #RRGGBB, got {t['color']!r}", "color")
            red, green, blue = (int(part, 16) for part in match.groups())
            color = (red, green, blue)
        return TemplateDefinition(
            template_id,
            name,
            self._get(t, "description", str, ""),
            color,
            tuple(members),
            frozenset(required),
        )

    def _tag(self, t: Mapping[str, Any]) -> TagDefinition:
        self._known_keys(t, "id", "name", "description", "secure", "watermark")
        tag_id, name = self._id_and_name(t, self._seen, self._names)
        return TagDefinition(
            tag_id,
            name,
            self._get(t, "description", str, ""),
            self._get(t, "secure", bool, False),
            self._get(t, "watermark", str, ""),
        )

    def _link(self, t: Mapping[str, Any]) -> LinkDefinition:
        self._known_keys(t, "id", "source_label", "target_label", "description")
        link_id, _ = self._id_and_name(t, self._seen, set())
        return LinkDefinition(
            link_id,
            self._get(t, "source_label", str),
            self._get(t, "target_label", str),
            self._get(t, "description", str, ""),
        )

    def _audit_reason(self, t: Mapping[str, Any]) -> AuditReason:
        self._known_keys(t, "id", "name", "type")
        reason_id, name = self._id_and_name(t, self._seen, self._names)
        kind = self._get(t, "type", str)
        if kind not in AUDIT_EVENT_TYPES:
            raise self.fail(f"'type' must be one of {', '.join(AUDIT_EVENT_TYPES)}, got {kind!r}", "type")
        return AuditReason(reason_id, name, kind)

    def _attributes(self, t: Any) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
        self._where = ("attributes", 0)
        if not isinstance(t, dict):
            raise self.fail("'attributes' must be a table")
        self._known_keys(t, "everyone", "users")
        everyone = self._pairs(t.get("everyone", {}), "attributes.everyone")
        users = t.get("users", {})
        if not isinstance(users, dict):
            raise self.fail("'attributes.users' must hold one table per user", "users")
        per_user = {user: self._pairs(pairs, f"attributes.users.{user}") for user, pairs in users.items()}
        self._where = ("", 0)
        return everyone, per_user

    def _pairs(self, t: Any, where: str) -> dict[str, str]:
        self._where = (where, 0)
        if not isinstance(t, dict):
            raise self.fail('must be a table of key = "value" pairs')
        for key, value in t.items():
            if not isinstance(value, str):
                raise self.fail(f"the value of '{key}' must be a string, got {value!r}", key)
        return dict(t)

    def _seed(self, t: Mapping[str, Any], catalog: Catalog) -> Seed:
        self._known_keys(t, "path", "template", "fields", "tags", "links")
        parts = self._path(self._get(t, "path", str), "path")
        template_name = self._get(t, "template", str, "")
        if template_name and catalog.template_named(template_name) is None:
            raise self.fail(f"'template' names {template_name!r}, which no [[template]] defines", "template")
        raw_fields = self._get(t, "fields", dict, {})
        fields = []
        for name, raw in raw_fields.items():
            definition = catalog.field_named(name)
            if definition is None:
                raise self.fail(f"'fields' names {name!r}, which no [[field]] defines", "fields")
            values = [raw] if isinstance(raw, str) else raw
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise self.fail(f"the value of {name!r} must be a string or a list of strings", "fields")
            if len(values) > 1 and not definition.is_multi_value:
                raise self.fail(f"{name!r} takes one value, got {len(values)}", "fields")
            try:
                checked = tuple(definition.check(v) for v in values)
            except ValueProblem as exc:
                raise self.fail(f"the value of {name!r} {exc}", "fields") from None
            fields.append((definition.name, checked))
        tags = self._strings(t, "tags")
        for tag in tags:
            if tag.casefold() not in {d.name.casefold() for d in catalog.tags}:
                raise self.fail(f"'tags' names {tag!r}, which no [[tag]] defines", "tags")
        links = []
        raw_links = self._get(t, "links", list, [])
        for raw_link in raw_links:
            if not isinstance(raw_link, dict) or set(raw_link) != {"type", "target"}:
                raise self.fail("each of 'links' must be { type = <link id>, target = \"/path\" }", "links")
            definition_id = raw_link["type"]
            if not isinstance(definition_id, int) or catalog.link(definition_id) is None:
                raise self.fail(f"'links' names link type {definition_id!r}, which no [[link]] has", "links")
            links.append(SeedLink(definition_id, self._path(raw_link["target"], "links")))
        return Seed(parts, template_name, tuple(fields), tags, tuple(links))

    def _path(self, path: Any, key: str) -> tuple[str, ...]:
        if not isinstance(path, str) or not path.startswith("/") or path.strip("/") == "":
            raise self.fail(f"a path must start with / and name an entry below the root, got {path!r}", key)
        parts = tuple(path.strip("/").split("/"))
        if any(part in ("", ".", "..") for part in parts):
            raise self.fail(f"the path {path!r} has an empty, '.' or '..' part", key)
        return parts

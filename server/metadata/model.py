"""Entries' metadata: a template, field values, tags and links, checked against the catalog and kept
in the store by the catalog's ids. One model for both Laserfiche dialects and the Elements hub.

Every change is one transaction: a crash leaves an entry's metadata as it was or as it was to be,
never a mix. Every method blocks (the API calls them through `asyncio.to_thread`).
"""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import orjson

from ..errors import BadRequest, NotFound
from ..repository import Entry, Repository
from ..store import transaction
from .carry import Then
from .catalog import (
    MAX_CATALOG_ID,
    AuditReason,
    Catalog,
    FieldDefinition,
    LinkDefinition,
    TagDefinition,
    TemplateDefinition,
)
from .rows import read_values, tags_of, write_values
from .values import ValueProblem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FieldValues:
    """One field of an entry: its definition and values (none: a template field left empty)."""

    definition: FieldDefinition
    values: tuple[str, ...]
    is_required: bool = False


@dataclass(frozen=True)
class Link:
    id: int
    definition: LinkDefinition
    source_id: int
    target_id: int
    # the ends' paths as names from the root (None: an end gone from the store)
    source_parts: tuple[str, ...] | None
    target_parts: tuple[str, ...] | None
    properties: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LinkToSet:
    """One link of a request: the other entry, and whether the entry is its source."""

    definition_id: int
    other_id: int
    is_source: bool = True
    properties: dict[str, str] = field(default_factory=dict)


# (field name as the client wrote it, its values)
FieldUpdate = tuple[str, Sequence[str]]


@dataclass(frozen=True)
class NewMetadata:
    """The metadata a request gives an entry it makes (an import's `metadata`)."""

    template: str | None = None
    fields: Sequence[FieldUpdate] = ()
    tags: Sequence[str] = ()
    links: Sequence[LinkToSet] = ()


def _write_new(
    template_id: int,
    values: dict[int, tuple[str, ...]],
    tag_ids: list[int],
    links: tuple[LinkToSet, ...],
    conn: sqlite3.Connection,
    entry_id: int,
) -> None:
    """Write checked metadata in the transaction of a new entry's row (a link to an entry gone
    since the check is left out: the entry must not fail to appear once it is on disk)."""
    conn.execute("UPDATE entries SET template_id = ? WHERE id = ?", (template_id, entry_id))
    write_values(conn, entry_id, fields=values, tags=tag_ids)
    for link in links:
        ends = (entry_id, link.other_id) if link.is_source else (link.other_id, entry_id)
        conn.execute(
            "INSERT INTO links (definition_id, source_id, target_id, properties)"
            " SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM entries WHERE id = ?)",
            (link.definition_id, *ends, orjson.dumps(link.properties).decode(), link.other_id),
        )


class Metadata:
    def __init__(self, repository: Repository, catalog: Catalog) -> None:
        self.repository = repository
        self.store = repository.store
        self.catalog = catalog
        # tag definitions the catalog lacks, first named by the Elements hub (see `tag_ids`)
        self._added_tags: dict[int, TagDefinition] = {}

    def open(self) -> None:
        """After the store opened: the tags added at run time, the Elements hub's tags of a store
        older than metadata moved over, and the catalog's sample values on a new store."""
        conn = self.store.conn
        with self.store.lock:
            for tag_id, name in conn.execute("SELECT id, name FROM added_tags"):
                self._added_tags[tag_id] = TagDefinition(tag_id, name)
            old = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'entry_tags'")
            if old.fetchone() is not None:
                with transaction(conn):
                    for entry_id, tags in conn.execute("SELECT entry_id, tags FROM entry_tags").fetchall():
                        write_values(conn, entry_id, tags=self.tag_ids(conn, orjson.loads(tags)))
                    conn.execute("DROP TABLE entry_tags")
            if conn.execute("SELECT 1 FROM facts WHERE key = 'seeded'").fetchone() is None:
                self._seed(conn)

    # ---- definitions -------------------------------------------------------------------

    def tag_definitions(self) -> list[TagDefinition]:
        return [*self.catalog.tags, *self._added_tags.values()]

    def tag_definition(self, tag_id: int) -> TagDefinition | None:
        return self.catalog.tag(tag_id) or self._added_tags.get(tag_id)

    def template_of(self, entry: Entry) -> TemplateDefinition | None:
        return self.catalog.template(entry.template_id) if entry.template_id else None

    def audit_reasons(self, event_type: str) -> list[AuditReason]:
        return [r for r in self.catalog.audit_reasons if r.event_type == event_type]

    def check_audit_reason(self, reason_id: int | None, event_type: str, required: bool) -> None:
        """Refuse (400) an audit reason that is not one of `event_type`'s, or none when one is required."""
        reasons = self.audit_reasons(event_type)
        if reason_id is None:
            if required:
                offered = ", ".join(f"{r.id} ({r.name})" for r in reasons) or "none defined"
                raise BadRequest(f"This repository requires an audit reason ('auditReasonId'): {offered}.")
            return
        if not any(r.id == reason_id for r in reasons):
            raise BadRequest(f"The field 'auditReasonId' names no {event_type} audit reason: {reason_id}.")

    # ---- reading -----------------------------------------------------------------------

    def fields(self, entry_id: int, names: Iterable[str] | None = None) -> list[FieldValues]:
        """The entry's fields: its template's first (in the template's order, with or without
        values), then the others that have values. `names`: only those fields."""
        with self.store.lock:
            entry = self.repository.entry(entry_id)
            return self._fields(self.store.conn, entry, names)

    def _fields(
        self, conn: sqlite3.Connection, entry: Entry, names: Iterable[str] | None = None
    ) -> list[FieldValues]:
        values, _ = read_values(conn, entry.id)
        template = self.template_of(entry)
        listed: list[FieldValues] = []
        if template is not None:
            for definition in self.catalog.template_fields(template):
                listed.append(
                    FieldValues(
                        definition, tuple(values.pop(definition.id, ())), definition.id in template.required
                    )
                )
        for field_id, found in sorted(values.items()):
            other = self.catalog.field(field_id)
            if other is not None:  # (a field since removed from the catalog is not shown)
                listed.append(FieldValues(other, tuple(found)))
        if names is not None:
            wanted = {name.casefold() for name in names}
            listed = [f for f in listed if f.definition.name.casefold() in wanted]
        return listed

    def tags(self, entry_id: int) -> list[TagDefinition]:
        with self.store.lock:
            self.repository.entry(entry_id)
            _, tag_ids = read_values(self.store.conn, entry_id)
        return [d for tag_id in tag_ids if (d := self.tag_definition(tag_id)) is not None]

    def tag_names_of(self, entry_ids: Sequence[int]) -> dict[int, list[str]]:
        """The tags of many entries, by name (the Elements hub's view); blocking."""
        if not entry_ids:
            return {}
        with self.store.lock:
            tags = tags_of(self.store.conn, entry_ids)
        return {
            entry_id: [d.name for tag_id in tag_ids if (d := self.tag_definition(tag_id)) is not None]
            for entry_id, tag_ids in tags.items()
        }

    def links(self, entry_id: int) -> list[Link]:
        """The links the entry is either end of, in the order they were made."""
        with self.store.lock:
            self.repository.entry(entry_id)
            rows = self.store.conn.execute(
                "SELECT id, definition_id, source_id, target_id, properties FROM links"
                " WHERE source_id = ? OR target_id = ? ORDER BY id",
                (entry_id, entry_id),
            ).fetchall()
            paths = {end: self.repository.parts_of(end) for row in rows for end in row[2:4]}
        links = []
        for link_id, definition_id, source_id, target_id, properties in rows:
            definition = self.catalog.link(definition_id)
            if definition is not None:
                links.append(
                    Link(
                        link_id,
                        definition,
                        source_id,
                        target_id,
                        paths[source_id],
                        paths[target_id],
                        orjson.loads(properties),
                    )
                )
        return links

    # ---- changing ----------------------------------------------------------------------

    def set_fields(self, entry_id: int, updates: Sequence[FieldUpdate]) -> list[FieldValues]:
        """Replace all of the entry's field values; the fields after the change."""
        with self.store.lock:
            entry = self.repository.entry(entry_id)
            checked = self._check_fields(updates)
            self._check_required(self.template_of(entry), checked)
            with transaction(self.store.conn) as conn:
                write_values(conn, entry.id, fields=checked)
            return self._fields(self.store.conn, entry)

    def set_template(self, entry_id: int, name: str, updates: Sequence[FieldUpdate] = ()) -> Entry:
        """Give the entry a template (and values for fields, which replace theirs); the entry."""
        template = self.catalog.template_named(name)
        if template is None:
            known = ", ".join(repr(t.name) for t in self.catalog.templates) or "none defined"
            raise BadRequest(f"The template {name!r} does not exist (templates: {known}).")
        with self.store.lock:
            entry = self.repository.entry(entry_id)
            checked = self._check_fields(updates)
            conn = self.store.conn
            current, _ = read_values(conn, entry.id)
            fields = {**current, **checked}
            self._check_required(template, fields)
            with transaction(conn):
                conn.execute("UPDATE entries SET template_id = ? WHERE id = ?", (template.id, entry.id))
                write_values(conn, entry.id, fields=fields)
            self.repository.changed()
            return self.repository.entry(entry.id)

    def remove_template(self, entry_id: int) -> Entry:
        """Take the entry's template away, with the values of the template's fields (as
        Laserfiche does); the entry."""
        with self.store.lock:
            entry = self.repository.entry(entry_id)
            template = self.template_of(entry)
            with transaction(self.store.conn) as conn:
                conn.execute("UPDATE entries SET template_id = 0 WHERE id = ?", (entry.id,))
                if template is not None:
                    current, _ = read_values(conn, entry.id)
                    kept = {k: v for k, v in current.items() if k not in template.fields}
                    write_values(conn, entry.id, fields=kept)
            self.repository.changed()
            return self.repository.entry(entry.id)

    def set_tags(self, entry_id: int, names: Sequence[str]) -> list[TagDefinition]:
        """Replace the entry's tags by these (each must be defined); its tags after the change."""
        tag_ids = self._check_tags(names)
        with self.store.lock:
            entry = self.repository.entry(entry_id)
            with transaction(self.store.conn) as conn:
                write_values(conn, entry.id, tags=tag_ids)
        return self.tags(entry.id)

    def set_tag_names(self, conn: sqlite3.Connection, entry_id: int, names: Sequence[str]) -> None:
        """The Elements hub's tags: by name, a name not defined yet becoming a new informational
        tag. Within the caller's transaction, under the store's lock; nothing if the entry is gone."""
        if conn.execute("SELECT 1 FROM entries WHERE id = ?", (entry_id,)).fetchone() is not None:
            write_values(conn, entry_id, tags=self.tag_ids(conn, names))

    def set_hub_tags(self, entry_id: int, names: Sequence[str]) -> None:
        with self.store.transaction() as conn:
            self.set_tag_names(conn, entry_id, names)

    def tag_ids(self, conn: sqlite3.Connection, names: Iterable[str]) -> list[int]:
        """The ids of tags by name (in any case, as Laserfiche's names are), defining those that
        are new (in the caller's transaction)."""
        by_name = {d.name.casefold(): d.id for d in self.tag_definitions()}
        ids = []
        for name in names:
            key = name.casefold()
            if key not in by_name:
                last = max([MAX_CATALOG_ID, *self._added_tags])
                self._added_tags[last + 1] = TagDefinition(last + 1, name)
                by_name[key] = last + 1
            tag_id = by_name[key]
            if (added := self._added_tags.get(tag_id)) is not None:
                # (written with each use: a transaction that rolled back the first cannot leave
                # a tag known here and unknown to the store)
                conn.execute(
                    "INSERT OR IGNORE INTO added_tags (id, name) VALUES (?, ?)", (tag_id, added.name)
                )
            ids.append(tag_id)
        return ids

    def set_links(self, entry_id: int, links: Sequence[LinkToSet]) -> list[Link]:
        """Replace every link the entry is an end of by these; its links after the change."""
        if any(link.other_id == entry_id for link in links):
            raise BadRequest("A link joins two different entries; 'otherEntryId' is the entry itself.")
        with self.store.lock:
            entry = self.repository.entry(entry_id)
            self._check_links(links)
            rows: dict[tuple[int, int, int], str] = {}
            for link in links:
                ends = (entry.id, link.other_id) if link.is_source else (link.other_id, entry.id)
                rows[(link.definition_id, *ends)] = orjson.dumps(link.properties).decode()
            with transaction(self.store.conn) as conn:
                conn.execute("DELETE FROM links WHERE source_id = ? OR target_id = ?", (entry.id, entry.id))
                conn.executemany(
                    "INSERT INTO links (definition_id, source_id, target_id, properties) VALUES (?, ?, ?, ?)",
                    [(*key, properties) for key, properties in rows.items()],
                )
        return self.links(entry.id)

    def check_new(self, new: NewMetadata) -> Then | None:
        """The metadata of an entry about to be made (an import), checked as a change of an
        entry's would be (400 naming the first value that does not fit): what writes it in the
        transaction of the entry's row; None when there is nothing to write. Blocking."""
        if new.template is None and not new.fields and not new.tags and not new.links:
            return None
        template = None
        if new.template:
            template = self.catalog.template_named(new.template)
            if template is None:
                raise BadRequest(f"The template {new.template!r} does not exist.")
        values = self._check_fields(new.fields)
        self._check_required(template, values)
        tag_ids = self._check_tags(new.tags)
        with self.store.lock:
            self._check_links(new.links)
        template_id = template.id if template else 0
        return functools.partial(_write_new, template_id, values, tag_ids, tuple(new.links))

    # ---- checks and writes -------------------------------------------------------------

    def _check_tags(self, names: Sequence[str]) -> list[int]:
        """The ids of defined tags by name (in any case); 400 naming one that is not defined."""
        by_name = {d.name.casefold(): d for d in self.tag_definitions()}
        tag_ids = []
        for name in names:
            definition = by_name.get(name.casefold())
            if definition is None:
                raise BadRequest(f"The tag {name!r} does not exist; see TagDefinitions for those that do.")
            tag_ids.append(definition.id)
        return tag_ids

    def _check_links(self, links: Sequence[LinkToSet]) -> None:
        """Each link's type defined and its other end there (400 naming what is not). Under the
        store's lock."""
        for link in links:
            if self.catalog.link(link.definition_id) is None:
                raise BadRequest(
                    f"The field 'linkDefinitionId' names no link definition: {link.definition_id}."
                )
            try:
                self.repository.entry(link.other_id)
            except NotFound:
                raise BadRequest(f"The field 'otherEntryId' names no entry: {link.other_id}.") from None

    def _check_fields(self, updates: Sequence[FieldUpdate]) -> dict[int, tuple[str, ...]]:
        """Field values checked against their definitions: field id -> values as stored. Any
        value that does not fit is a 400 naming its field."""
        checked: dict[int, tuple[str, ...]] = {}
        for name, values in updates:
            definition = self.catalog.field_named(name)
            if definition is None:
                raise BadRequest(
                    f"The field {name!r} does not exist; see FieldDefinitions for those that do."
                )
            if definition.id in checked:
                raise BadRequest(f"The field {definition.name!r} is given twice.")
            if len(values) > 1 and not definition.is_multi_value:
                raise BadRequest(f"The field {definition.name!r} takes one value, got {len(values)}.")
            try:
                checked[definition.id] = tuple(definition.check(value) for value in values)
            except ValueProblem as exc:
                raise BadRequest(f"The value of field {definition.name!r} {exc}.") from None
        return checked

    def _check_required(
        self, template: TemplateDefinition | None, values: Mapping[int, Sequence[str]]
    ) -> None:
        if template is None:
            return
        for field_id in template.fields:
            if field_id in template.required and not values.get(field_id):
                definition = self.catalog.field(field_id)
                name = definition.name if definition else str(field_id)
                raise BadRequest(f"The field {name!r} is required by the template {template.name!r}.")

    # ---- the sample's values -----------------------------------------------------------

    def _seed(self, conn: sqlite3.Connection) -> None:
        """Give the catalog's [[entry]] values to the entries at their paths (checked when the
        catalog was read), once for a store; a path with no entry is skipped with a warning."""
        ids: dict[tuple[str, ...], int | None] = {}
        for parts in [seed.parts for seed in self.catalog.seeds] + [
            link.target for seed in self.catalog.seeds for link in seed.links
        ]:
            if parts not in ids:  # (found before the transaction: finding may give ids)
                found, _ = self.repository.by_path(list(parts))
                ids[parts] = None if found is None else found.id
                if found is None:
                    log.warning("catalog: no entry at '/%s'; its sample values are skipped", "/".join(parts))

        def entry_id(parts: tuple[str, ...]) -> int | None:
            return ids[parts]

        with transaction(conn):
            for seed in self.catalog.seeds:
                seed_id = entry_id(seed.parts)
                if seed_id is None:
                    continue
                template = self.catalog.template_named(seed.template) if seed.template else None
                conn.execute(
                    "UPDATE entries SET template_id = ? WHERE id = ?",
                    (template.id if template else 0, seed_id),
                )
                checked = {
                    definition.id: values
                    for name, values in seed.fields
                    if (definition := self.catalog.field_named(name)) is not None
                }
                write_values(conn, seed_id, fields=checked, tags=self.tag_ids(conn, seed.tags))
                conn.execute("DELETE FROM links WHERE source_id = ?", (seed_id,))
                for link in seed.links:
                    target_id = entry_id(link.target)
                    if target_id is not None:
                        conn.execute(
                            "INSERT INTO links (definition_id, source_id, target_id) VALUES (?, ?, ?)",
                            (link.definition_id, seed_id, target_id),
                        )
            conn.execute("INSERT OR REPLACE INTO facts (key, value) VALUES ('seeded', '1')")
        self.repository.changed()

"""The catalog: the definitions a repository's metadata is checked against, read from one
human-edited TOML file (`.catalog.toml` at the top of the storage root, or `--catalog FILE`) by
`reading.load_catalog`.

Loading is all or nothing: a mistake is a `CatalogError` naming the file, the line and what is
wrong, and the server does not start on half a catalog.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .values import ConstraintMismatch, check_value

# ids a catalog may give; those above are the server's own (tags first named by the Elements hub)
MAX_CATALOG_ID = 999_999
AUDIT_EVENT_TYPES = ("DeleteEntry", "ExportDocument")
# a String field's length when the catalog gives none, and the most it may give (Laserfiche's)
DEFAULT_STRING_LENGTH = 100
MAX_STRING_LENGTH = 4000


class CatalogError(ValueError):
    """A catalog that cannot be used: where (file and line) and what is wrong."""

    def __init__(self, path: Path, line: int | None, message: str) -> None:
        self.path, self.line, self.message = path, line, message
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class FieldDefinition:
    id: int
    name: str
    type: str
    description: str = ""
    length: int = 0  # a String's most characters (0 for other types)
    constraint: str = ""  # a String's regular expression, matched against the whole value
    constraint_error: str = ""
    list_values: tuple[str, ...] = ()
    is_multi_value: bool = False
    default_value: str = ""

    def check(self, value: str) -> str:
        """The value as stored (ValueProblem if this field cannot take it)."""
        try:
            return check_value(self.type, value, self.length, self.constraint, self.list_values)
        except ConstraintMismatch as exc:
            if not self.constraint_error:
                raise
            raise ConstraintMismatch(f"{exc}: {self.constraint_error}") from None


@dataclass(frozen=True)
class TemplateDefinition:
    id: int
    name: str
    description: str = ""
    color: tuple[int, int, int] = (0, 0, 0)
    fields: tuple[int, ...] = ()  # field ids, in the template's order
    required: frozenset[int] = frozenset()


@dataclass(frozen=True)
class TagDefinition:
    id: int
    name: str
    description: str = ""
    is_secure: bool = False
    watermark: str = ""


@dataclass(frozen=True)
class LinkDefinition:
    id: int
    source_label: str
    target_label: str
    description: str = ""


@dataclass(frozen=True)
class AuditReason:
    id: int
    name: str
    event_type: str


@dataclass(frozen=True)
class SeedLink:
    definition_id: int
    target: tuple[str, ...]


@dataclass(frozen=True)
class Seed:
    """The values one sample entry starts with (see `Metadata.seed`)."""

    parts: tuple[str, ...]
    template: str = ""
    fields: tuple[tuple[str, tuple[str, ...]], ...] = ()
    tags: tuple[str, ...] = ()
    links: tuple[SeedLink, ...] = ()


def _by_key(items: Iterable[Any], key: Any) -> dict[Any, Any]:
    return {key(item): item for item in items}


@dataclass(frozen=True)
class Catalog:
    fields: tuple[FieldDefinition, ...] = ()
    templates: tuple[TemplateDefinition, ...] = ()
    tags: tuple[TagDefinition, ...] = ()
    links: tuple[LinkDefinition, ...] = ()
    audit_reasons: tuple[AuditReason, ...] = ()
    attributes: Mapping[str, str] = field(default_factory=dict)  # for everyone
    user_attributes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    seeds: tuple[Seed, ...] = ()
    source: Path | None = None

    def __post_init__(self) -> None:
        index = {
            "field_ids": _by_key(self.fields, lambda d: d.id),
            "field_names": _by_key(self.fields, lambda d: d.name.casefold()),
            "template_ids": _by_key(self.templates, lambda d: d.id),
            "template_names": _by_key(self.templates, lambda d: d.name.casefold()),
            "tag_ids": _by_key(self.tags, lambda d: d.id),
            "link_ids": _by_key(self.links, lambda d: d.id),
        }
        object.__setattr__(self, "_index", index)

    def _find(self, index: str, key: Any) -> Any:
        found: Any = self._index[index].get(key)  # type: ignore[attr-defined]
        return found

    def field(self, field_id: int) -> FieldDefinition | None:
        found: FieldDefinition | None = self._find("field_ids", field_id)
        return found

    def field_named(self, name: str) -> FieldDefinition | None:
        found: FieldDefinition | None = self._find("field_names", name.casefold())
        return found

    def template(self, template_id: int) -> TemplateDefinition | None:
        found: TemplateDefinition | None = self._find("template_ids", template_id)
        return found

    def template_named(self, name: str) -> TemplateDefinition | None:
        found: TemplateDefinition | None = self._find("template_names", name.casefold())
        return found

    def tag(self, tag_id: int) -> TagDefinition | None:
        found: TagDefinition | None = self._find("tag_ids", tag_id)
        return found

    def link(self, link_id: int) -> LinkDefinition | None:
        found: LinkDefinition | None = self._find("link_ids", link_id)
        return found

    def template_fields(self, template: TemplateDefinition) -> list[FieldDefinition]:
        return [d for field_id in template.fields if (d := self.field(field_id)) is not None]

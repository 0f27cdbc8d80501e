"""CEQL, the bulk jobs' query language (server/ceql.py): every construct of the subset evaluated over
hub records, every construct outside it refused with a 400 naming it, and random text never
raising anything else."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from server.ceql import FIELDS, MAX_DEPTH, MAX_QUERY_CHARS, Query, parse
from server.errors import BadRequest


def record(
    id: int,
    path: str,
    *,
    size: int = 0,
    created: str = "2026-01-01T00:00:00.000Z",
    modified: str = "2026-01-01T00:00:00.000Z",
    tags: tuple[str, ...] = (),
    directory: bool = False,
) -> dict[str, Any]:
    """An entry as the hub renders it (server.api.elements.render)."""
    return {
        "id": str(id),
        "name": path.rsplit("/", 1)[1],
        "path": path,
        "directory": directory,
        "size": size,
        "createdDate": created,
        "modifiedDate": modified,
        "tags": list(tags),
    }


RECORDS = [
    record(1, "/Docs/a.txt", size=5, modified="2026-03-01T10:00:00.000Z", tags=("x",)),
    record(2, "/Docs/Reports/B.pdf", size=1200, created="2026-01-15T12:00:00.000Z", tags=("x", "Y")),
    record(3, "/Notes/c_1.md", created="2025-12-31T23:30:00.000Z", modified="2026-02-01T00:00:00.000Z"),
    record(4, "/Docs/it's.txt", size=42, created="2026-01-01T10:00:00.000Z", tags=("quote's", "y")),
    record(10, "/Notes/ab.txt", size=5, created="2026-01-02T00:00:00.000Z", tags=("y",)),
    record(5, "/Docs", directory=True, tags=("x",)),
    record(6, "/Docs/Reports", directory=True, created="2026-02-01T00:00:00.000Z"),
]


def run(text: str, records: list[dict[str, Any]] = RECORDS) -> list[dict[str, Any]]:
    """What a bulk job does with a query: filter, order, limit, project."""
    query = parse(text)
    found = [r for r in records if query.matches(r)]
    if query.order_by is not None:
        found.sort(key=query.sort_key, reverse=query.order_by[1])
    if query.limit is not None:
        found = found[: query.limit]
    return [query.project(r) for r in found]


def ids(text: str, records: list[dict[str, Any]] = RECORDS) -> list[str]:
    return [r["id"] for r in run(text, records)]


def where(condition: str) -> set[str]:
    return set(ids(f"select * from files where {condition}"))


def refused(text: str) -> str:
    with pytest.raises(BadRequest) as caught:
        parse(text)
    assert caught.value.status == 400
    assert "Supported:" in caught.value.detail
    return caught.value.detail


# ---- the query as built --------------------------------------------------------------------------


def test_parse_builds_the_query() -> None:
    text = "select name, size from files where size > 1 order by size desc limit 3"
    query = parse(text)
    assert isinstance(query, Query)
    assert (query.text, query.fields, query.object_name, query.order_by, query.limit) == (
        text,
        ("name", "size"),
        "files",
        ("size", True),
        3,
    )
    assert FIELDS == ("id", "name", "path", "directory", "size", "createdDate", "modifiedDate", "tags")
    bare = parse("select * from folders")
    assert (bare.fields, bare.object_name, bare.order_by, bare.limit) == (None, "folders", None, None)
    assert bare.sort_key(RECORDS[0]) == bare.sort_key(RECORDS[1])  # no order: every key ties


def test_from_files_and_folders() -> None:
    assert ids("select * from files") == ["1", "2", "3", "4", "10"]
    assert ids("select * from folders") == ["5", "6"]
    assert ids("select * from folders where name = 'reports'") == ["6"]


# ---- each operator on each field -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        # path and name: case-insensitive
        ("path = '/docs/A.TXT'", {"1"}),
        ("path != '/Docs/a.txt'", {"2", "3", "4", "10"}),
        ("path < '/docs/j'", {"1", "4"}),
        ("path > '/Notes'", {"3", "10"}),
        ("path like '/DOCS/%'", {"1", "2", "4"}),
        ("path in ('/docs/a.txt', '/NOTES/c_1.md', '/nowhere')", {"1", "3"}),
        ("name = 'b.PDF'", {"2"}),
        ("name != 'B.pdf'", {"1", "3", "4", "10"}),
        ("name < 'b'", {"1", "10"}),
        ("name > 'b.pdf'", {"3", "4"}),
        ("name like '%.TXT'", {"1", "4", "10"}),
        ("name in ('A.txt', 'ab.TXT')", {"1", "10"}),
        # size: numbers
        ("size = 5", {"1", "10"}),
        ("size != 5", {"2", "3", "4"}),
        ("size < 42", {"1", "3", "10"}),
        ("size > 42", {"2"}),
        ("size > 41.5", {"2", "4"}),
        ("size = 5.0", {"1", "10"}),
        ("size > -1", {"1", "2", "3", "4", "10"}),
        ("size in (0, 1200)", {"2", "3"}),
        # dates: instants
        ("createdDate = '2026-01-01'", {"1"}),
        ("createdDate = '2026-01-01T10:00:00Z'", {"4"}),
        ("createdDate = '2026-01-01T12:00:00+02:00'", {"4"}),
        ("createdDate != '2026-01-01T00:00:00.000Z'", {"2", "3", "4", "10"}),
        ("createdDate < '2026-01-01'", {"3"}),
        ("createdDate > '2026-01-01T00:00:00Z'", {"2", "4", "10"}),
        ("createdDate = '2026-01-01T00:30:00+01:00'", {"3"}),  # 2025-12-31T23:30Z
        ("createdDate > '2026-01-01T00:30:00+01:00'", {"1", "2", "4", "10"}),
        ("createdDate < '2026-01-01T01:00:00+01:00'", {"3"}),
        ("createdDate < '2025-12-31T20:00:00.000-05:00'", {"1", "3"}),
        ("createdDate > '2026-01-01T09:59:59'", {"2", "4", "10"}),  # no offset: UTC
        ("createdDate in ('2026-01-02', '2026-01-15T13:00:00+01:00')", {"2", "10"}),
        ("modifiedDate = '2026-03-01T10:00:00Z'", {"1"}),
        ("modifiedDate != '2026-01-01'", {"1", "3"}),
        ("modifiedDate < '2026-02-01T00:00:00.001Z'", {"2", "3", "4", "10"}),
        ("modifiedDate > '2026-01-31'", {"1", "3"}),
        ("modifiedDate in ('2026-02-01', '2026-03-01T11:00:00+01:00')", {"1", "3"}),
        # tags: = has it, != has it not, in has any, like some tag matches; exactly, case and all
        ("tags = 'x'", {"1", "2"}),
        ("tags = 'X'", set()),
        ("tags = 'Y'", {"2"}),
        ("tags != 'x'", {"3", "4", "10"}),
        ("tags in ('Y', 'quote''s')", {"2", "4"}),
        ("tags in ('nothing')", set()),
        ("tags like 'q%'", {"4"}),
        ("tags like '_'", {"1", "2", "4", "10"}),
        ("tags like 'y'", {"4", "10"}),
    ],
)
def test_each_operator_on_each_field(condition: str, expected: set[str]) -> None:
    assert where(condition) == expected


def test_and_binds_tighter_than_or_and_parentheses_group() -> None:
    # x-tagged: 1, 2; size 5: 1, 10; under /Notes: 3, 10
    assert where("tags = 'x' or size = 5 and path like '/notes/%'") == {"1", "2", "10"}
    assert where("(tags = 'x' or size = 5) and path like '/notes/%'") == {"10"}
    assert where("size = 5 and path like '/notes/%' or tags = 'x'") == {"1", "2", "10"}
    assert where("size = 5 and (path like '/notes/%' or tags = 'x')") == {"1", "10"}
    assert where("((size = 5)) and ((name = 'a.txt' or (name = 'ab.txt')))") == {"1", "10"}
    assert where("name = 'a.txt' or name = 'b.pdf' or name = 'c_1.md'") == {"1", "2", "3"}
    assert where("size < 100 and size > 0 and tags != 'y'") == {"1"}


def test_keywords_and_field_names_are_case_insensitive() -> None:
    query = parse(
        "SeLeCt NAME, CreatedDate FrOm FILES wHeRe Size In (5) AnD Name LIKE 'A%' Or TAGS = 'Y' "
        "OrDeR bY createddate DeSc LiMiT 5"
    )
    assert query.fields == ("name", "createdDate")
    assert query.object_name == "files"
    assert query.order_by == ("createdDate", True)
    assert [r["name"] for r in run(query.text)] == ["B.pdf", "ab.txt", "a.txt"]


def test_names_that_begin_with_keywords_stay_names() -> None:
    # `orders` and `likes` are not `or` and `like`: they are refused as fields, not misread
    assert "orders" in refused("select orders from files")
    assert "likes" in refused("select * from files where likes = 'a'")


def test_quotes_inside_strings() -> None:
    assert where("name = 'it''s.txt'") == {"4"}
    assert where("tags = 'quote''s'") == {"4"}
    assert where("name like '%''%'") == {"4"}
    assert where("name = ''") == set()


def test_like_percent_and_underscore() -> None:
    assert where("name like 'a%'") == {"1", "10"}
    assert where("name like '_.txt'") == {"1"}
    assert where("name like '__.txt'") == {"10"}
    assert where("name like '%'") == {"1", "2", "3", "4", "10"}
    assert where("name like 'a%%.txt'") == {"1", "10"}
    assert where("name like 'a.txt%'") == {"1"}  # % matches the empty run
    assert where("name like '%c_1%'") == {"3"}
    assert where("name like 'c%1%md'") == {"3"}
    assert where("name like '%b%b%'") == set()  # pieces in order, never overlapping
    assert where("path like '/docs/%/%'") == {"2"}
    assert where("name like 'a_txt'") == {"1"}  # `_` is any one character, `.` only itself
    assert where("name like 'a.tx'") == set()  # the whole value, not a part
    assert where("name like '(.*)'") == set()  # regex characters are literal


def test_like_stays_linear_on_hostile_patterns() -> None:
    pattern = "%_" * 1000 + "%x"
    query = parse(f"select * from files where name like '{pattern}'")
    long_name = record(1, "/" + "a" * 5000)
    started = time.perf_counter()
    assert not query.matches(long_name)
    assert time.perf_counter() - started < 1.0


def test_absent_or_null_values_match_no_condition() -> None:
    bare = {"id": "9", "name": None, "directory": False}
    for condition in ("name = 'a'", "name != 'a'", "size < 1", "size != 1", "createdDate > '2000-01-01'"):
        assert not parse(f"select * from files where {condition}").matches(bare)
    # no tags at all: has no tag
    assert parse("select * from files where tags != 'x'").matches(bare)
    assert not parse("select * from files where tags in ('x')").matches(bare)


# ---- select, order by, limit -------------------------------------------------------------------------


def test_select_projects_in_the_order_named() -> None:
    rows = run("select size, name, id from files where name = 'a.txt'")
    assert rows == [{"size": 5, "name": "a.txt", "id": "1"}]
    assert list(rows[0]) == ["size", "name", "id"]
    assert run(
        "select tags, directory, modifiedDate, path, createdDate from folders where name = 'docs'"
    ) == [
        {
            "tags": ["x"],
            "directory": True,
            "modifiedDate": "2026-01-01T00:00:00.000Z",
            "path": "/Docs",
            "createdDate": "2026-01-01T00:00:00.000Z",
        }
    ]
    assert run("select * from files where name = 'a.txt'") == [RECORDS[0]]
    assert parse("select id from files").project({"name": "x"}) == {"id": None}


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        # ids as numbers: 10 after 4; ties (none here) would keep the input order
        ("id", ["1", "2", "3", "4", "10"]),
        ("id desc", ["10", "4", "3", "2", "1"]),
        # names case-insensitively: B.pdf between ab.txt and c_1.md
        ("name", ["1", "10", "2", "3", "4"]),
        ("name asc", ["1", "10", "2", "3", "4"]),
        ("name desc", ["4", "3", "2", "10", "1"]),
        ("path", ["1", "4", "2", "10", "3"]),
        ("path desc", ["3", "10", "2", "4", "1"]),
        # ties keep the input order, both ways (a stable sort)
        ("size", ["3", "1", "10", "4", "2"]),
        ("size desc", ["2", "4", "1", "10", "3"]),
        ("createdDate", ["3", "1", "4", "10", "2"]),
        ("createdDate desc", ["2", "10", "4", "1", "3"]),
        ("modifiedDate", ["2", "4", "10", "3", "1"]),
        ("modifiedDate DESC", ["1", "3", "2", "4", "10"]),
    ],
)
def test_order_by_each_orderable_field(order: str, expected: list[str]) -> None:
    assert ids(f"select * from files order by {order}") == expected


def test_sort_key_orders_instants_absent_first_and_names_case_insensitively() -> None:
    records = [
        record(1, "/b", created="2026-01-01T01:00:00+02:00"),  # 2025-12-31T23:00Z
        record(2, "/A", created="2025-12-31T23:30:00.000Z"),
        {"id": "3", "directory": False},
        record(4, "/c", created="2025-12-31T22:00:00-02:00"),  # 2026-01-01T00:00Z
    ]
    assert ids("select * from files order by createdDate", records) == ["3", "1", "2", "4"]
    assert ids("select * from files order by createdDate desc", records) == ["4", "2", "1", "3"]
    assert ids("select * from files order by name", records) == ["3", "2", "1", "4"]
    assert ids("select * from files order by size", records) == ["3", "1", "2", "4"]


def test_limit() -> None:
    assert ids("select * from files order by id limit 2") == ["1", "2"]
    assert ids("select * from files limit 0") == []
    assert ids("select * from files limit 100") == ["1", "2", "3", "4", "10"]
    assert parse("select * from files where size > 1 order by size limit 007").limit == 7


# ---- refusals --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "offending"),
    [
        ("select count(*) from files", "count(*)"),
        ("select * from files where lower(name) = 'a'", "lower(name)"),
        ("select * from files where size <= 5", "<="),
        ("select * from files where size >= 5", ">="),
        ("select * from files where name <> 'a'", "<>"),
        ("select * from files where name == 'a'", "=="),
        ("select * from files group by name", "group by"),
        ("select * from files where size > 1 having size > 2", "having"),
        ("select * from files join folders", "join"),
        ("select * from files inner join folders", "inner join"),
        ("select owner from files", "owner"),
        ("select * from files where owner = 'me'", "owner"),
        ("select * from files where id = '1'", "id"),
        ("select * from files where directory = 'true'", "directory"),
        ("select * from files where size like '%5%'", "size like '%5%'"),
        ("select * from files where createdDate like '2026%'", "createdDate like '2026%'"),
        ("select * from files where tags < 'x'", "tags < 'x'"),
        ("select * from files where tags > 'x'", "tags > 'x'"),
        ("select * from files order by name, size", "size"),
        ("select * from files order by name desc, size desc", "size desc"),
        ("select * from files order by tags", "tags"),
        ("select * from files order by directory", "directory"),
        ("select * from files order by owner", "owner"),
        ("select * from files limit -1", "limit -1"),
        ("select * from files limit 2.5", "limit 2.5"),
        ("select * from files limit 5 offset 10", "offset"),
        ("select distinct name from files", "distinct"),
        ("select * from files where name is null", "is null"),
        ("select * from files where name is not null", "is not null"),
        ("select * from files where name not like '%a%'", "not like"),
        ("select * from files where not name = 'a'", "not"),
        ("select * from files where name between 'a' and 'b'", "between"),
        ("select * from files union select * from folders", "union"),
        ("select * from users", "users"),
        ("select * from files where createdDate > 'yesterday'", "'yesterday'"),
        ("select * from files where modifiedDate = '2026-13-01'", "'2026-13-01'"),
        ("select * from files where createdDate > 20260101", "20260101"),
        ("select * from files where size = '5'", "'5'"),
        ("select * from files where size in (1, 'two')", "'two'"),
        ("select * from files where name = 5", "5"),
        ("select * from files where tags in (1)", "1"),
        ("select * from files where name in ()", "name in ()"),
        ("select name, name from files", "name"),
        ("select *, name from files", ","),
        ("select * from files;", ";"),
        ('select * from files where name = "a"', '"a"'),
        ("select * from files where name = 'a", "'a"),
        ("select * from files where name ~ 'a'", "~"),
        ("select * from files where size = size", "size"),
        ("select * from files order by name ascending", "ascending"),
        ("select * from files limit 5 order by name", "order by"),
        ("select * from files where name in (select name from folders)", "select"),
        ("select * from files where", "where"),
        ("select * from files where name = 'a' and", "and"),
        ("select * from", "from"),
        ("delete from files", "delete"),
        ("select from files", "from"),
    ],
)
def test_unsupported_constructs_are_refused_by_name(text: str, offending: str) -> None:
    detail = refused(text)
    assert f'"{offending}"' in detail, detail


def test_refused_detail_quotes_the_text_as_written() -> None:
    assert '"COUNT(*)"' in refused("SELECT COUNT(*) FROM files")
    assert '"GROUP  BY"' in refused("select * from files GROUP  BY name")
    assert '"LIMIT -1"' in refused("select * from files LIMIT -1")
    assert '"Owner"' in refused("select * from files where Owner = 'x'")


def test_empty_long_and_deep_queries_are_refused() -> None:
    assert "empty" in refused("")
    assert "empty" in refused("  \n ")
    padding = "select * from files where name = '" + "a" * MAX_QUERY_CHARS
    assert f"{MAX_QUERY_CHARS:,}" in refused(padding[: MAX_QUERY_CHARS + 1])
    fits = "select * from files where name = '{}'"
    parse(fits.format("a" * (MAX_QUERY_CHARS - len(fits) + 2)))  # exactly the most accepted
    deep = "select * from files where " + "(" * MAX_DEPTH + "size = 5" + ")" * MAX_DEPTH
    assert ids(deep.replace("select *", "select id")) == ["1", "10"]
    assert str(MAX_DEPTH) in refused(deep.replace("(", "((", 1).replace(")", "))", 1))
    # deeper than Python's recursion would allow, and unbalanced: refused, not crashed
    refused("select * from files where " + "(" * 3000)


def test_a_refused_query_names_the_first_problem() -> None:
    detail = refused("select owner from users where size <= 5")
    assert '"owner"' in detail and "users" not in detail and "<=" not in detail


# ---- hostile text ------------------------------------------------------------------------------------

WORDS = [
    "select", "from", "where", "and", "or", "order", "by", "limit", "asc", "desc", "like", "in", "not",
    "files", "folders", "*", ",", "(", ")", "=", "!=", "<", ">", "<=", "'", "''", "'a'", "'%_'", "5",
    "-1", "2.5", "'2026-01-01'", "'2026-01-01T10:00:00+02:00'", "count(*)", "group", ";", "\n", *FIELDS,
]  # fmt: skip


def _never_worse_than_bad_request(text: str) -> None:
    try:
        query = parse(text)
    except BadRequest as exc:
        assert exc.status == 400 and exc.detail
        return
    for r in RECORDS:  # a query that parses evaluates cleanly on every record
        if query.matches(r):
            query.project(r)
        query.sort_key(r)


@hsettings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_random_text_is_refused_or_parsed_never_crashes(text: str) -> None:
    _never_worse_than_bad_request(text)


@hsettings(max_examples=600, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(WORDS), max_size=40), st.booleans())
def test_random_token_soup_is_refused_or_parsed_never_crashes(words: list[str], prefix: bool) -> None:
    head = ["select", "*", "from", "files", "where"] if prefix else []
    _never_worse_than_bad_request(" ".join(head + words))

"""OpenAPI description vs the router, /healthz, X-RequestId, problem details everywhere."""

from __future__ import annotations

from urllib.parse import unquote, unquote_plus

from conftest import BASE, CHILDREN, Api, assert_problem, make_settings, sign_in

from server.app import create_app

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _registered_routes(app) -> dict[str, set[str]]:
    """canonical path -> set of lower-case methods (HEAD and wildcard routes left out)."""
    out: dict[str, set[str]] = {}
    for route in app.router.routes():
        resource = route.resource
        canonical = getattr(resource, "canonical", None)
        if resource is None or canonical is None:
            continue
        methods = out.setdefault(canonical, set())
        m = route.method.lower()
        if m in HTTP_METHODS and m not in ("head", "options"):
            methods.add(m)
    return out


async def test_openapi_describes_every_route(client):
    resp = await client.get("/openapi.json")
    assert resp.status == 200
    assert resp.content_type in ("application/json", "application/vnd.oai.openapi+json")
    doc = await resp.json(content_type=None)
    assert str(doc["openapi"]).startswith("3.1")
    assert isinstance(doc["info"], dict) and doc["info"].get("title")
    paths = doc["paths"]
    assert isinstance(paths, dict) and paths
    routes = _registered_routes(client.server.app)
    assert routes, "no routes found on the app"
    missing = sorted(p for p in routes if p not in paths)
    assert not missing, f"routes missing from openapi.json: {missing}"
    missing_methods = {
        p: sorted(ms - {k.lower() for k in paths[p]})
        for p, ms in routes.items()
        if ms - {k.lower() for k in paths[p]}
    }
    assert not missing_methods, f"methods missing from openapi.json: {missing_methods}"


async def test_openapi_covers_the_laserfiche_routes(client):
    doc = await (await client.get("/openapi.json")).json(content_type=None)
    joined = "\n".join(doc["paths"])
    for needle in (
        "/Token",
        "/Entries/ByPath",
        f"/{CHILDREN}",
        "/Laserfiche.Repository.Document/edoc",
        "/fields",
        "/links",
        "/tags",
        "/healthz",
    ):
        assert needle in joined, needle


async def test_openapi_and_healthz_need_no_auth(client):
    for path in ("/openapi.json", "/healthz"):
        resp = await client.get(path)
        assert resp.status == 200, path
        assert "X-RequestId" in resp.headers


async def test_healthz(client):
    resp = await client.get("/healthz")
    assert resp.status == 200
    await resp.read()


async def test_request_ids_are_unique(client, api):
    seen = set()
    for resp in (
        await client.get("/healthz"),
        await client.get("/healthz"),
        await api.get("/Entries/1"),
        await api.get("/Entries/999999"),
        await client.get(f"{BASE}/Entries/1"),
        await client.post(
            f"{BASE}/Token", data={"grant_type": "password", "username": "admin", "password": "x"}
        ),
    ):
        rid = resp.headers.get("X-RequestId")
        assert rid, resp
        seen.add(rid)
    assert len(seen) == 6


async def test_problem_header_is_url_encoded_title(api):
    resp = await api.get("/Entries/999999")
    body = await assert_problem(resp, 404)
    header = resp.headers["X-APIServer-Error"]
    assert header.isascii()
    assert unquote_plus(header) == body["title"] or unquote(header) == body["title"]
    assert body["traceId"]
    assert body["instance"].endswith("/Entries/999999")


async def test_problem_trace_id_matches_request_id_or_is_present(api):
    resp = await api.get("/Entries/424242")
    body = await assert_problem(resp, 404)
    assert isinstance(body["traceId"], str) and body["traceId"]
    assert isinstance(body["title"], str) and body["title"]


async def test_unknown_route_is_problem(api, client):
    await assert_problem(await api.get("/NoSuchThing"), 404)
    await assert_problem(await client.get("/definitely/not/here", headers=api.headers), 404)


async def test_wrong_method_is_problem(api):
    await assert_problem(await api.request("PUT", "/Entries/1"), 405)


async def test_storage_root_created_when_missing(aiohttp_client, tmp_path):
    root = tmp_path / "new" / "deeper" / "root"
    client = await aiohttp_client(create_app(make_settings(root)))
    assert root.is_dir()
    api = Api(client, await sign_in(client))
    assert (await api.entry(1))["id"] == 1
    assert await api.child_names(1) == set()


async def test_existing_content_is_served(aiohttp_client, tmp_path):
    root = tmp_path / "root"
    (root / "pre" / "existing").mkdir(parents=True)
    (root / "pre" / "existing" / "f.txt").write_bytes(b"f")
    client = await aiohttp_client(create_app(make_settings(root)))
    api = Api(client, await sign_in(client))
    assert await api.child_names(1) == {"pre"}
    assert (await api.by_path("\\pre\\existing\\f.txt"))["elecDocumentSize"] == 1

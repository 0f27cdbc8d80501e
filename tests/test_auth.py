"""Sign-in (POST /Token) and bearer checks."""

from __future__ import annotations

import asyncio

import pytest
from conftest import BASE, CHILDREN, Api, assert_problem, make_settings, sign_in

from server.app import create_app


async def test_sign_in_returns_bearer_token(client):
    resp = await client.post(
        f"{BASE}/Token",
        data={"grant_type": "password", "username": "admin", "password": "admin"},
    )
    assert resp.status == 200
    assert "X-RequestId" in resp.headers
    body = await resp.json()
    assert set(body) >= {"access_token", "expires_in", "token_type"}
    assert body["token_type"] == "bearer"
    assert isinstance(body["access_token"], str) and len(body["access_token"]) >= 16
    assert isinstance(body["expires_in"], int | float) and body["expires_in"] > 0
    assert body["expires_in"] <= 3600


async def test_two_sign_ins_give_distinct_tokens(client):
    t1 = await sign_in(client)
    t2 = await sign_in(client)
    assert t1 != t2
    for t in (t1, t2):
        assert (await Api(client, t).get("/Entries/1")).status == 200


async def test_token_grants_access(client, token):
    resp = await client.get(f"{BASE}/Entries/1", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200
    assert (await resp.json())["id"] == 1


@pytest.mark.parametrize(
    "form",
    [
        {"grant_type": "password", "username": "admin", "password": "wrong"},
        {"grant_type": "password", "username": "nobody", "password": "admin"},
        {"grant_type": "password", "username": "admin", "password": ""},
    ],
    ids=["wrong-password", "unknown-user", "empty-password"],
)
async def test_bad_credentials_refused(client, form):
    resp = await client.post(f"{BASE}/Token", data=form)
    body = await assert_problem(resp, (400, 401))
    assert "access_token" not in body


async def test_unsupported_grant_type_is_400(client):
    resp = await client.post(
        f"{BASE}/Token",
        data={"grant_type": "client_credentials", "username": "admin", "password": "admin"},
    )
    await assert_problem(resp, 400)


async def test_missing_grant_fields_is_400(client):
    resp = await client.post(f"{BASE}/Token", data={"grant_type": "password", "username": "admin"})
    await assert_problem(resp, (400, 401))


async def test_token_for_unknown_repository_is_404(client):
    resp = await client.post(
        "/v1/Repositories/r-nope/Token",
        data={"grant_type": "password", "username": "admin", "password": "admin"},
    )
    await assert_problem(resp, 404)


async def test_multiple_configured_users(aiohttp_client, storage_root):
    settings = make_settings(storage_root, users=(("admin", "admin"), ("bob", "s3cret")))
    client = await aiohttp_client(create_app(settings))
    token = await sign_in(client, "bob", "s3cret")
    assert (await Api(client, token).get("/Entries/1")).status == 200
    resp = await client.post(
        f"{BASE}/Token", data={"grant_type": "password", "username": "bob", "password": "admin"}
    )
    await assert_problem(resp, (400, 401))


@pytest.mark.parametrize(
    "path",
    ["/Entries/1", f"/Entries/1/{CHILDREN}", "/Entries/ByPath?fullPath=%5C", "/Entries/1/fields"],
)
async def test_missing_token_is_401(client, path):
    resp = await client.get(BASE + path)
    await assert_problem(resp, 401)


@pytest.mark.parametrize(
    "header",
    [
        "Bearer forged-token-0123456789abcdef",
        "Bearer ",
        "Basic YWRtaW46YWRtaW4=",
        "bearer",
        "Token abc",
    ],
)
async def test_bad_authorization_header_is_401(client, token, header):
    resp = await client.get(f"{BASE}/Entries/1", headers={"Authorization": header})
    await assert_problem(resp, 401)


async def test_tampered_token_is_401(client, token):
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    resp = await client.get(f"{BASE}/Entries/1", headers={"Authorization": f"Bearer {tampered}"})
    await assert_problem(resp, 401)


async def test_missing_token_on_mutation_changes_nothing(client, storage_root):
    resp = await client.post(f"{BASE}/Entries/1/{CHILDREN}", json={"entryType": "Folder", "name": "x"})
    await assert_problem(resp, 401)
    assert not (storage_root / "x").exists()


async def test_expired_token_is_401(aiohttp_client, storage_root):
    settings = make_settings(storage_root, session_ttl_s=1.0)
    client = await aiohttp_client(create_app(settings))
    token = await sign_in(client)
    api = Api(client, token)
    assert (await api.get("/Entries/1")).status == 200
    await asyncio.sleep(1.5)
    await assert_problem(await api.get("/Entries/1"), 401)
    # a fresh sign-in works again
    api.token = await sign_in(client)
    assert (await api.get("/Entries/1")).status == 200


async def test_expires_in_follows_session_ttl(aiohttp_client, storage_root):
    settings = make_settings(storage_root, session_ttl_s=120.0)
    client = await aiohttp_client(create_app(settings))
    resp = await client.post(
        f"{BASE}/Token", data={"grant_type": "password", "username": "admin", "password": "admin"}
    )
    body = await resp.json()
    assert 100 <= body["expires_in"] <= 120


@pytest.mark.parametrize("path", ["/Entries/1", f"/Entries/1/{CHILDREN}", "/Entries/ByPath?fullPath=%5C"])
async def test_unknown_repository_with_valid_token_is_404(client, token, path):
    resp = await client.get(f"/v1/Repositories/r-other{path}", headers={"Authorization": f"Bearer {token}"})
    await assert_problem(resp, 404)


async def test_configured_repository_id(aiohttp_client, storage_root):
    settings = make_settings(storage_root, repository_id="r-custom")
    client = await aiohttp_client(create_app(settings))
    token = await sign_in(client, repo="r-custom")
    api = Api(client, token, base="/v1/Repositories/r-custom")
    assert (await api.get("/Entries/1")).status == 200
    resp = await client.get(f"{BASE}/Entries/1", headers={"Authorization": f"Bearer {token}"})
    await assert_problem(resp, 404)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded; charset=bogus", b"grant_type=password"),
        ("application/x-www-form-urlencoded", b"grant_type=\xff\xfe"),
        ("multipart/form-data", b"grant_type=password"),  # no boundary
    ],
)
async def test_malformed_sign_in_form_is_400(client, content_type, body):
    resp = await client.post(f"{BASE}/Token", data=body, headers={"Content-Type": content_type})
    await assert_problem(resp, 400)


async def test_unknown_route_is_404_even_without_a_token(client):
    await assert_problem(await client.get(f"{BASE}/NoSuchThing"), 404)
    await assert_problem(await client.get("/nowhere"), 404)

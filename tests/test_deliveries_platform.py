"""Webhook deliveries as the platform exposes them (issue 15), over real sockets: the instance
setting `notification.webhook.failure.policy` (`retry` or `queue`), `GET
/notifications/subscriptions/deliveries?where=...` and `PUT` on the same route to redeliver.

The deliveries come from bulk jobs' callbacks (and one asynchronous copy's webhook) sent to a real
receiver that refuses them (500) until the test "fixes" it. Helpers are test_bulk.py's.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from test_bulk import (
    DEFAULT_KEY,
    QUIET_S,
    check_callback,
    deliveries,
    make_grid,
    notification_of,
    open_bulk,
    start_job,
    wait_job,
)
from test_webhooks import assert_problem
from webhook_receiver import ELEMENT_TOKEN, ELEMENTS, hub_auth, platform_auth, wait_for

POLICY = "notification.webhook.failure.policy"


async def test_failure_policy_queue_then_redeliver(aiohttp_client, storage_root, receivers):
    make_grid(storage_root / "G", 2, 3)
    refusing = await receivers(fail_first=1000)
    el = await open_bulk(aiohttp_client, storage_root)
    r = await el.platform("PATCH", "/instances/1", body={"configuration": {POLICY: "queue"}})
    assert r.status == 200, r.text
    assert r.json()["configuration"][POLICY] == "queue", r.json()
    # a second instance, default policy (retry), the same refusing receiver: retried, for contrast
    r = await el.create_instance("retrying", refusing.url, "second-key")
    second = r.json()
    assert POLICY not in second["configuration"] or second["configuration"][POLICY] == "retry", second
    # a third, queue policy set at creation
    body = {
        "name": "queueing",
        "element": {"key": "documents"},
        "configuration": {
            "event.notification.enabled": True,
            "event.notification.callback.url": refusing.url,
            "event.notification.signature.key": "third-key",
            POLICY: "queue",
        },
    }
    r = await el.platform("POST", "/instances", body=body)
    assert r.status == 200, r.text
    third = r.json()

    job_id = await start_job(el, "select * from files", callback=refusing.url)
    retried_job = await start_job(el, "select * from files", token=second["token"])
    third_job = await start_job(el, "select * from folders", token=third["token"])
    for job, token in ((job_id, ELEMENT_TOKEN), (retried_job, second["token"]), (third_job, third["token"])):
        final, _ = await wait_job(el, job, token=token)
        assert final["status"] == "COMPLETED", final

    # queued after one attempt, no retries (the retrying instance gets 1 + 3 attempts meanwhile)
    queued = await wait_for(
        lambda: deliveries(el, "status='queued'", platform_auth()),
        "a queued delivery",
        timeout=5,
    )
    await wait_for(
        lambda: sum(r.json()["id"] == retried_job for r in refusing.requests) == 4,
        "the retrying instance's 4 attempts",
        timeout=5,
    )
    await asyncio.sleep(QUIET_S)
    attempts = Counter(r.json()["id"] for r in refusing.requests)
    assert attempts == {job_id: 1, third_job: 1, retried_job: 4}, attempts
    # each signed with its instance's key
    keys = {job_id: DEFAULT_KEY, retried_job: "second-key", third_job: "third-key"}
    for rec in refusing.requests:
        check_callback(rec, keys[rec.json()["id"]])
    queued = await deliveries(el, "status='queued'", platform_auth())
    by_event = {d["eventId"]: d for d in queued}
    assert set(by_event) == {job_id, third_job, retried_job}, queued
    mine = by_event[job_id]
    assert mine["status"] == "queued", mine
    assert mine["instanceId"] == 1, mine
    assert mine["url"] == refusing.url, mine
    assert [a["statusCode"] for a in mine["attempts"]] == [500], mine
    [first_try] = [r for r in refusing.requests if r.json()["id"] == job_id]
    assert mine["notificationId"] == notification_of(first_try)
    check_callback(first_try)

    # an Element token sees its own instance's deliveries only; the organization sees all
    assert [d["eventId"] for d in await deliveries(el, "status='queued'", hub_auth())] == [job_id]
    assert [d["eventId"] for d in await deliveries(el, None, hub_auth(third["token"]))] == [third_job]
    assert {d["eventId"] for d in await deliveries(el, None, hub_auth(second["token"]))} == {retried_job}
    assert await deliveries(el, "status='delivered'", platform_auth()) == []
    [one] = await deliveries(el, f"notificationId={mine['notificationId']}", platform_auth())
    assert one["eventId"] == job_id
    [one] = await deliveries(el, f"eventId={job_id} and status='queued'", platform_auth())
    assert one["notificationId"] == mine["notificationId"]

    # the receiver is fixed; PUT with instance 1's token redelivers its queued delivery only
    refusing.fail_first = 0
    before = len(refusing.requests)
    r = await el.call(
        "PUT",
        ELEMENTS + "/notifications/subscriptions/deliveries",
        auth=hub_auth(),
        params={"where": "status='queued'"},
    )
    assert r.status == 200, r.text
    [sent] = r.json()
    assert (sent["notificationId"], sent["eventId"], sent["status"]) == (
        mine["notificationId"],
        job_id,
        "pending",
    ), sent
    await wait_for(lambda: len(refusing.delivered) == 1, "the redelivery", timeout=5)
    [again] = refusing.delivered
    assert notification_of(again) == mine["notificationId"], "redelivered with another notificationId"
    assert again.body == first_try.body
    assert check_callback(again)["id"] == job_id
    [done] = await deliveries(el, f"notificationId={mine['notificationId']}", platform_auth())
    assert done["status"] == "delivered", done
    assert [a["statusCode"] for a in done["attempts"]] == [500, 200], done
    await asyncio.sleep(QUIET_S)
    assert len(refusing.requests) == before + 1, "only instance 1's delivery was to be sent again"
    still = {d["eventId"] for d in await deliveries(el, "status='queued'", platform_auth())}
    assert still == {third_job, retried_job}, still
    # a PUT that selects nothing sends nothing
    r = await el.call(
        "PUT",
        ELEMENTS + "/notifications/subscriptions/deliveries",
        auth=platform_auth(),
        params={"where": "eventId=999999"},
    )
    assert (r.status, r.json()) == (200, []), r.text

    # the policy holds for an asynchronous request's webhook too: one attempt, then queued
    refusing.fail_first = 10**6
    (storage_root / "one.txt").write_bytes(b"1")
    r = await el.hub(
        "POST",
        "/files/copy",
        params={"path": "/one.txt"},
        body={"path": "/two.txt"},
        headers={"Elements-Async-Request": "True", "Elements-Async-Callback-URL": refusing.url},
    )
    assert r.status == 202, r.text
    event_id = r.json()["eventId"]
    [d] = await wait_for(
        lambda: deliveries(el, f"eventId={event_id} and status='queued'", platform_auth()),
        "the async request's webhook to be queued",
    )
    await asyncio.sleep(QUIET_S)
    sent = [r for r in refusing.requests if notification_of(r) == d["notificationId"]]
    assert (len(sent), len(d["attempts"])) == (1, 1), (len(sent), d)


@pytest.mark.parametrize(
    "where",
    [
        "status='nope'",
        "status=queued",
        "url='x'",
        "status='queued' or eventId=1",
        "eventId='1'",
        "notificationId=-1",
        "status = 'queued' and",
        "1=1",
        # (a second term for the same field would select nothing, or the last one alone)
        "status='queued' and status='delivered'",
        "eventId=1 and eventId=2",
    ],
)
async def test_bad_deliveries_where_is_400(aiohttp_client, storage_root, where):
    el = await open_bulk(aiohttp_client, storage_root)
    for method in ("GET", "PUT"):
        r = await el.call(
            method,
            ELEMENTS + "/notifications/subscriptions/deliveries",
            auth=platform_auth(),
            params={"where": where},
        )
        assert_problem(r, 400)


@pytest.mark.parametrize("value", ["sometimes", "", "RETRY", 1, True, ["queue"]])
async def test_bad_failure_policy_is_400(aiohttp_client, storage_root, value):
    el = await open_bulk(aiohttp_client, storage_root)
    r = await el.platform("PATCH", "/instances/1", body={"configuration": {POLICY: value}})
    problem = assert_problem(r, 400)
    assert POLICY in problem["detail"], problem
    body = {"name": "x", "element": {"key": "documents"}, "configuration": {POLICY: value}}
    problem = assert_problem(await el.platform("POST", "/instances", body=body), 400)
    assert POLICY in problem["detail"], problem
    r = await el.platform("GET", "/instances/1")
    assert r.json()["configuration"].get(POLICY) in (None, "retry"), r.json()
    r = await el.platform("GET", "/instances")
    assert [i["id"] for i in r.json()] == [1], r.json()

"""Someone else's integration tests: nothing of the sandbox's but its pytest plugin's fixtures.

Run with `pytest -n 4`: each test gets a sandbox of its own, on a port of its own.
"""

import base64
import hashlib
import hmac
import time

import pytest

# the seed's copy-folder.json (SAP Open Connectors, "Asynchronous API Requests")
COPY_FOLDER = {"path": "/testfoldercopy", "tags": ["TestFolderCopy"], "name": "TestFolderCopy"}


def test_the_seeds_asynchronous_copy_reports_to_the_inbox_signed(sandbox):
    inbox = sandbox.inbox("demo")
    answer = sandbox.elements.post(
        "/hubs/documents/folders/copy?path=/TestFolderCreate",
        json=COPY_FOLDER,
        headers={"Elements-Async-Request": "True", "Elements-Async-Callback-URL": inbox.url},
    )
    assert answer.status == 202, answer
    event = answer.json()
    assert event["eventStatus"] == "dispatched"

    [delivery] = inbox.wait(count=1, timeout=30)
    assert delivery["verified"] is True
    assert delivery["signatures"] == {
        "elements": {"present": True, "valid": True},
        "standard": {"present": True, "valid": True},
    }
    webhook = delivery["json"]
    assert webhook["eventId"] == event["eventId"]
    assert [e["metadata"]["path"] for e in webhook["response"]["events"]] == [
        "/TestFolderCopy",
        "/TestFolderCopy/testUploadFile.txt",
    ]
    # the receiver's own check, with the sandbox's signature key
    digest = hmac.new(sandbox.signature_key.encode(), delivery["body"].encode(), hashlib.sha256).digest()
    assert delivery["headers"]["Elements-Webhook-Signature"] == "sha256=" + base64.b64encode(digest).decode()
    copied = sandbox.elements.get("/hubs/documents/files/metadata?path=/TestFolderCopy/testUploadFile.txt")
    assert copied.status == 200, copied


def start_copy(v1, name):
    """A CopyAsync of \\Invoices into the root: the operation's token."""
    invoices = v1.get("Entries/ByPath", params={"fullPath": "\\Invoices"}).json()["entry"]
    started = v1.post(
        "Entries/1/Laserfiche.Repository.Folder/CopyAsync", json={"sourceId": invoices["id"], "name": name}
    )
    assert started.status == 202, started
    return started.json()["token"]


def test_a_laserfiche_long_operation_ends_in_a_redirect_to_the_copy(sandbox):
    token = start_copy(sandbox.v1, "Invoices copy")
    deadline = time.monotonic() + 30
    while (status := sandbox.v1.get(f"Tasks/{token}")).status == 202:
        assert time.monotonic() < deadline, status.json()
        time.sleep(0.05)
    assert status.status == 302, status
    assert status.json()["status"] == "Completed"

    copy = sandbox.v1.get(status.headers["Location"]).json()
    assert copy["name"] == "Invoices copy"
    children = sandbox.v1.get(f"Entries/{copy['id']}/Laserfiche.Repository.Folder/children").json()
    assert [c["name"] for c in children["value"]] == ["2026"]
    assert sorted(p.name for p in (sandbox.root / "Invoices copy" / "2026").iterdir()) == [
        "INV-0001.txt",
        "INV-0002.txt",
    ]


@pytest.mark.sandbox(pace_ms=400)
def test_a_cancelled_laserfiche_copy_keeps_what_it_had_copied(sandbox):
    token = start_copy(sandbox.v1, "Slow copy")
    deadline = time.monotonic() + 30
    while sandbox.v1.get(f"Tasks/{token}").json()["percentComplete"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.02)

    assert sandbox.v1.delete(f"Tasks/{token}").status == 204
    ended = sandbox.v1.get(f"Tasks/{token}")
    assert ended.status == 200, ended
    assert ended.json()["status"] == "Cancelled"
    partial = sandbox.v1.get(f"Entries/{ended.json()['entryId']}").json()
    assert partial["name"] == "Slow copy"
    copied = [p.name for p in (sandbox.root / "Slow copy").rglob("*.txt")]
    assert len(copied) < 2, copied


def test_a_v2_copy_task_over_a_storage_root_of_our_own(sandbox_factory, tmp_path):
    (tmp_path / "Reports" / "2026").mkdir(parents=True)
    (tmp_path / "Reports" / "2026" / "q1.txt").write_text("Q1")
    sandbox = sandbox_factory(root=tmp_path, session_concurrency="queue")
    reports = sandbox.v2.get("Entries/ByPath", params={"fullPath": "\\Reports"}).json()["entry"]
    started = sandbox.v2.post(
        "Entries/1/Folder/CopyAsync", json={"sourceId": reports["id"], "name": "Reports copy"}
    )
    assert started.status == 202, started

    # GET Tasks holds its answer until the task ends
    [task] = sandbox.v2.get("Tasks", params={"taskIds": started.json()["taskId"]}).json()["value"]
    assert task["status"] == "Completed", task
    assert (sandbox.root / "Reports copy" / "2026" / "q1.txt").read_text() == "Q1"
    assert not (tmp_path / "Reports copy").exists()  # the sandbox served a copy

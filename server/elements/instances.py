"""Element instances: the credentials of hub requests and where their webhooks go (their
configuration), held in memory and stored. No aiohttp."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

import orjson

from ..config import url_problem
from ..errors import BadRequest, NotFound
from ..store import Store

ELEMENT_KEY = "documents"
ENABLED = "event.notification.enabled"
CALLBACK_URL = "event.notification.callback.url"
SIGNATURE_KEY = "event.notification.signature.key"
# what happens to a webhook the receiver refused: retried with backoff, then queued (the default),
# or queued at once for redelivery
FAILURE_POLICY = "notification.webhook.failure.policy"
RETRY_POLICY = "retry"
QUEUE_POLICY = "queue"
DEFAULT_INSTANCE_ID = 1
DEFAULT_INSTANCE_NAME = "sandbox"
# who the entries made through the hub are created by (the Laserfiche dialect's `creator`)
ELEMENTS_USER = "elements"


def check_callback_url(url: str, where: str) -> str:
    problem = url_problem(url)
    if problem:
        raise BadRequest(f"The {where} {problem}; got {url!r}.")
    return url


def _flag(value: Any) -> bool | None:
    """`event.notification.enabled` as sent: a JSON boolean, or "true"/"false"."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise BadRequest(f"The configuration key '{ENABLED}' must be true or false, got {value!r}.")


def failure_policy(configuration: dict[str, Any]) -> str:
    """An instance's `notification.webhook.failure.policy` (retry unless it says queue)."""
    return str(configuration.get(FAILURE_POLICY) or RETRY_POLICY)


def check_configuration(configuration: dict[str, Any]) -> dict[str, Any]:
    _flag(configuration.get(ENABLED))
    policy = configuration.get(FAILURE_POLICY)
    if policy is not None and policy not in (RETRY_POLICY, QUEUE_POLICY):
        raise BadRequest(
            f"The configuration key '{FAILURE_POLICY}' must be '{RETRY_POLICY}' or '{QUEUE_POLICY}', "
            f"got {policy!r}."
        )
    for key in (CALLBACK_URL, SIGNATURE_KEY):
        value = configuration.get(key)
        if value is not None and not isinstance(value, str):
            raise BadRequest(f"The configuration key '{key}' must be a string.")
    if configuration.get(CALLBACK_URL):
        check_callback_url(configuration[CALLBACK_URL], f"configuration key '{CALLBACK_URL}'")
    return configuration


@dataclass(frozen=True)
class Instance:
    id: int
    name: str
    token: str
    configuration: dict[str, Any]
    created_ns: int

    @property
    def callback_url(self) -> str:
        """Where its asynchronous requests report, unless a request names a URL: "" for nowhere
        (none set, or notifications switched off)."""
        if _flag(self.configuration.get(ENABLED)) is False:
            return ""
        return str(self.configuration.get(CALLBACK_URL) or "")

    @property
    def signature_key(self) -> str:
        return str(self.configuration.get(SIGNATURE_KEY) or "")


class Instances:
    """Element instances, held in memory (every hub request looks its token up) and stored."""

    def __init__(self, store: Store, default_token: str, callback_url: str, signature_key: str) -> None:
        self.store = store
        self._default = (default_token, callback_url, signature_key)
        self._by_id: dict[int, Instance] = {}
        # keyed by a digest of the token: a lookup's timing tells nothing about the tokens held
        self._by_token: dict[bytes, Instance] = {}

    def load(self) -> None:
        """Read the instances, the default one as the settings make it; blocking."""
        token, callback_url, signature_key = self._default
        configuration = {
            ENABLED: bool(callback_url),
            CALLBACK_URL: callback_url,
            SIGNATURE_KEY: signature_key,
        }
        with self.store.transaction() as conn:
            # the settings win over what a client changed last time: they are what the banner shows
            conn.execute("DELETE FROM instances WHERE token = ? AND id != ?", (token, DEFAULT_INSTANCE_ID))
            conn.execute(
                "INSERT INTO instances (id, name, token, configuration, created_ns)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                " token = excluded.token, configuration = excluded.configuration",
                (DEFAULT_INSTANCE_ID, DEFAULT_INSTANCE_NAME, token, _dumps(configuration), time.time_ns()),
            )
            rows = conn.execute("SELECT id, name, token, configuration, created_ns FROM instances").fetchall()
        for instance_id, name, token, configuration, created_ns in rows:
            self._keep(Instance(instance_id, name, token, orjson.loads(configuration), created_ns))

    def by_token(self, token: str) -> Instance | None:
        return self._by_token.get(_digest(token))

    def get(self, instance_id: int) -> Instance:
        found = self._by_id.get(instance_id)
        if found is None:
            raise NotFound(f"No instance with id {instance_id}.", title="Instance not found.")
        return found

    def all(self) -> list[Instance]:
        return sorted(self._by_id.values(), key=lambda i: i.id)

    def create(self, name: str, configuration: dict[str, Any]) -> Instance:
        """A new instance with a new token; blocking."""
        token, now = secrets.token_urlsafe(24), time.time_ns()
        with self.store.lock:
            cursor = self.store.conn.execute(
                "INSERT INTO instances (name, token, configuration, created_ns) VALUES (?, ?, ?, ?)",
                (name, token, _dumps(configuration), now),
            )
        assert cursor.lastrowid is not None
        return self._keep(Instance(cursor.lastrowid, name, token, configuration, now))

    def update(self, instance_id: int, name: str | None, configuration: dict[str, Any] | None) -> Instance:
        """Rename and/or merge configuration keys into an instance; blocking. Reading, writing and
        keeping happen under the store's lock, so concurrent changes neither undo a delete nor
        lose each other's keys."""
        with self.store.lock:
            old = self.get(instance_id)
            merged = old.configuration | (configuration or {})
            new = Instance(old.id, old.name if name is None else name, old.token, merged, old.created_ns)
            self.store.conn.execute(
                "UPDATE instances SET name = ?, configuration = ? WHERE id = ?",
                (new.name, _dumps(merged), new.id),
            )
            return self._keep(new)

    def delete(self, instance_id: int) -> None:
        """Remove an instance: its token stops working, its events stay readable; blocking."""
        with self.store.lock:
            old = self.get(instance_id)
            if old.id == DEFAULT_INSTANCE_ID:
                raise BadRequest(
                    "The default instance comes from the server's settings (--elements-token, "
                    "--callback-url, --signature-key) and cannot be deleted."
                )
            self.store.conn.execute("DELETE FROM instances WHERE id = ?", (old.id,))
            del self._by_id[old.id]
            del self._by_token[_digest(old.token)]

    def _keep(self, instance: Instance) -> Instance:
        self._by_id[instance.id] = instance
        self._by_token[_digest(instance.token)] = instance
        return instance


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()

"""The Elements dialect's records: element instances (`instances`: credentials and webhook
settings) and events (`events`: one per asynchronous request, each ending in one webhook)."""

from .events import (
    Event,
    EventHook,
    Events,
    EventStatus,
    copied_tree,
    event_objects,
    outcome,
)
from .instances import (
    CALLBACK_URL,
    DEFAULT_INSTANCE_ID,
    ELEMENT_KEY,
    ELEMENTS_USER,
    ENABLED,
    FAILURE_POLICY,
    QUEUE_POLICY,
    SIGNATURE_KEY,
    Instance,
    Instances,
    check_callback_url,
    check_configuration,
)

__all__ = [
    "CALLBACK_URL",
    "DEFAULT_INSTANCE_ID",
    "ELEMENTS_USER",
    "ELEMENT_KEY",
    "ENABLED",
    "FAILURE_POLICY",
    "QUEUE_POLICY",
    "SIGNATURE_KEY",
    "Event",
    "EventHook",
    "EventStatus",
    "Events",
    "Instance",
    "Instances",
    "check_callback_url",
    "check_configuration",
    "copied_tree",
    "event_objects",
    "outcome",
]

"""The sandbox in other test suites: the pytest plugin (`plugin`), the sandbox a test gets
(`sandbox`), its process (`process`, `runner`) and a standard-library HTTP client (`http`)."""

from .http import Client, Response
from .process import SandboxError
from .sandbox import Inbox, Laserfiche, Sandbox, SandboxWarning, sample_root, start_sandbox

__all__ = [
    "Client",
    "Inbox",
    "Laserfiche",
    "Response",
    "Sandbox",
    "SandboxError",
    "SandboxWarning",
    "sample_root",
    "start_sandbox",
]

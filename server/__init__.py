"""A local sandbox server for long-running document operations (Laserfiche v1 over a folder on disk)."""

__version__ = "0.1.0"

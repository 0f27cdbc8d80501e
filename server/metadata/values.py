"""What a field of each type accepts, and the form its values are stored (and shown) in."""

from __future__ import annotations

import datetime
import decimal
import re

FIELD_TYPES = ("String", "LongInteger", "Number", "Date", "DateTime", "List")
# a LongInteger is 64 bits, signed
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
_INTEGER = re.compile(r"^[+-]?\d+$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_MIDNIGHT = re.compile(r"^(\d{4}-\d{2}-\d{2})(T00:00(:00(\.0+)?)?(Z|[+-]00:00)?)?$")


class ValueProblem(ValueError):
    """Why a value does not fit its field: the text completes "The value of field 'X' …"."""


class ConstraintMismatch(ValueProblem):
    """A String that does not match its field's constraint."""


def check_value(kind: str, value: str, length: int, constraint: str, choices: tuple[str, ...]) -> str:
    """`value` as a field of type `kind` stores it; ValueProblem if the field cannot take it."""
    if kind == "String":
        return _string(value, length, constraint)
    text = value.strip()
    if kind == "LongInteger":
        if not _INTEGER.match(text) or not LONG_MIN <= int(text) <= LONG_MAX:
            raise ValueProblem(f"must be a whole number from {LONG_MIN} to {LONG_MAX}, got {value!r}")
        return str(int(text))
    if kind == "Number":
        if not _NUMBER.match(text):
            raise ValueProblem(f"must be a number such as 1250.00, got {value!r}")
        return str(decimal.Decimal(text))
    if kind == "Date":
        match = _MIDNIGHT.match(text)
        try:
            return datetime.date.fromisoformat(match.group(1)).isoformat() if match else _bad_date(value)
        except ValueError:
            return _bad_date(value)
    if kind == "DateTime":
        try:
            moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueProblem(
                f"must be a date and time such as 2026-12-15T09:30:00, got {value!r}"
            ) from None
        return moment.isoformat()
    if kind == "List":
        if value not in choices:
            raise ValueProblem(f"must be one of {', '.join(repr(c) for c in choices)}, got {value!r}")
        return value
    raise AssertionError(f"unknown field type {kind!r}")


def _string(value: str, length: int, constraint: str) -> str:
    if not value.isprintable() and any(c not in "\t\r\n" and not c.isprintable() for c in value):
        raise ValueProblem("must not contain control characters")
    if len(value) > length:
        raise ValueProblem(f"must be at most {length} characters long, got {len(value)}")
    if constraint and re.fullmatch(constraint, value) is None:
        raise ConstraintMismatch(f"does not match the field's constraint {constraint!r}, got {value!r}")
    return value


def _bad_date(value: str) -> str:
    raise ValueProblem(f"must be a date such as 2026-12-15, got {value!r}")

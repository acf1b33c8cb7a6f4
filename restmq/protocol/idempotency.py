"""Idempotency keys (SPEC §3.8): what a client may send as ``Idempotency-Key``.

A key names one logical produce request; its retries carry the same key. Any visible ASCII
text of 1 to 255 characters is accepted (a UUID is the common case); anything else is a 400,
so that a key can never be mangled on its way through a proxy.
"""

from __future__ import annotations

import re
from typing import Any

from restmq.errors import BadRequest

HEADER = "Idempotency-Key"
FIELD = "idempotency_key"
_VALID = re.compile(r"[!-~]{1,255}")


def check_idempotency_key(value: Any) -> str | None:
    """``value`` as an idempotency key (None when absent), or BadRequest."""
    if value is None:
        return None
    if not isinstance(value, str) or not _VALID.fullmatch(value):
        raise BadRequest(
            f"{HEADER} must be 1 to 255 visible ASCII characters (a UUID, for example)"
        )
    return value


def idempotency_key(header: str | None, field: Any) -> str | None:
    """The request's key: the header, or the body's ``idempotency_key`` field; both present
    and different is a 400."""
    from_header, from_field = check_idempotency_key(header), check_idempotency_key(field)
    if from_header is not None and from_field is not None and from_header != from_field:
        raise BadRequest(f"the {HEADER} header and the {FIELD} field differ")
    return from_header if from_header is not None else from_field

"""Keys for personal data at rest (DESIGN.md "Trust rules", docs/security.md "Personal data").

- `encrypt`/`decrypt`: Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) under a MultiFernet of
  `settings.FIELD_ENCRYPTION_KEYS`, newest first: new values are encrypted under the first key, values under any
  listed key are read. Rotating = put a new key first, run `manage.py personal_data_rotate`, then drop the old one.
- `blind_index`: HMAC-SHA256 of the normalised value under `settings.BLIND_INDEX_KEY` (a separate key), so an
  exact match (the same legal representative's ID number, a phone already registered) is a query on an indexed
  column without the clear value ever being stored. Rotating this key means recomputing every index
  (`personal_data_rotate --reindex`).
"""

from __future__ import annotations

import functools
import hashlib
import hmac

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings

TOKEN_PREFIX = "gAAAAA"  # every Fernet token starts so (version byte 0x80 and a 64-bit timestamp's high bytes)


@functools.lru_cache(maxsize=8)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(value: str) -> str:
    return fernet().encrypt(value.encode()).decode()


def is_token(value: str) -> bool:
    return isinstance(value, str) and value.startswith(TOKEN_PREFIX)


def decrypt(token: str) -> str:
    return fernet().decrypt(token.encode()).decode()


def rotate(token: str) -> str:
    """The same value re-encrypted under the newest key."""
    return fernet().rotate(token.encode()).decode()


def normalise(value) -> str:
    """ID numbers compare upper-case (the check digit X), phones and names without surrounding spaces."""
    return str(value or "").strip().upper()


def blind_index(value) -> str:
    """HMAC-SHA256 (hex) of the normalised value; empty stays empty (so blank rows still match blank)."""
    text = normalise(value)
    if not text:
        return ""
    return hmac.new(settings.BLIND_INDEX_KEY.encode(), text.encode(), hashlib.sha256).hexdigest()

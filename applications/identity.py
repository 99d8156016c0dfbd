"""Identity verification providers (身份核验): is this name the holder of this resident ID number?

Pluggable like the data sources (underwriting/providers.py); ``settings.IDENTITY_PROVIDER`` chooses:

* ``sandbox`` – deterministic, no network: a valid resident ID number (GB 11643 check digit, python-stdnum)
  with a name of 2 to 20 characters matches, except the documented test identities below, which do not.
* ``http``    – JSON over HTTP(S) to the bank's gateway to the 公安部 citizen identity service
  (``IDENTITY_PROVIDER_URL``): ``POST {url}/verify`` ``{name, id_number}`` → ``{matched, reference}``.

The provider answers only the name-and-number question; whether that person is the enterprise's legal
representative, and the SMS code to the phone, are checked by the service (applications.services).
"""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from dataclasses import dataclass

from django.conf import settings

from .identifiers import check_resident_id

# Sandbox identities that never match (to try the refusal): any name containing this marker.
SANDBOX_MISMATCH_MARKER = "冒名"


@dataclass(frozen=True)
class IdentityAnswer:
    matched: bool
    reference: str
    reason: str = ""  # a code when not matched: name_mismatch, invalid_id, unavailable


class IdentityProviderError(Exception):
    """The identity service could not answer (network, 5xx, malformed): try again later."""


class SandboxIdentityProvider:
    name = "sandbox"

    def verify(self, *, name: str, id_number: str) -> IdentityAnswer:
        reference = "SBX-" + hashlib.sha256(f"{name}|{id_number}".encode()).hexdigest()[:16].upper()
        if not check_resident_id(id_number).ok:
            return IdentityAnswer(False, reference, "invalid_id")
        if not 2 <= len(name.strip()) <= 20 or SANDBOX_MISMATCH_MARKER in name:
            return IdentityAnswer(False, reference, "name_mismatch")
        return IdentityAnswer(True, reference)


class HttpIdentityProvider:
    name = "http"

    def __init__(self, base_url: str, *, timeout: float = 5.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def verify(self, *, name: str, id_number: str) -> IdentityAnswer:
        body = json.dumps({"name": name, "id_number": id_number}).encode()
        request = urllib.request.Request(f"{self.base_url}/verify", data=body, method="POST",
                                         headers={"Content-Type": "application/json", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - configured https URL
                answer = json.loads(response.read().decode())
        except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
            raise IdentityProviderError(str(exc)[:200]) from exc
        if not isinstance(answer, dict) or not isinstance(answer.get("matched"), bool):
            raise IdentityProviderError("malformed answer")
        return IdentityAnswer(answer["matched"], str(answer.get("reference") or "")[:100],
                              "" if answer["matched"] else str(answer.get("reason") or "name_mismatch")[:40])


def identity_provider():
    """The configured provider (settings.IDENTITY_PROVIDER: sandbox or http)."""
    kind = getattr(settings, "IDENTITY_PROVIDER", "sandbox")
    if kind == "http":
        return HttpIdentityProvider(settings.IDENTITY_PROVIDER_URL,
                                    timeout=float(getattr(settings, "IDENTITY_PROVIDER_TIMEOUT", 5)))
    if kind != "sandbox":
        raise ValueError(f"unknown IDENTITY_PROVIDER {kind!r}: sandbox or http")
    return SandboxIdentityProvider()

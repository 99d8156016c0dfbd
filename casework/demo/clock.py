"""The demo's clock: the history is played through the real services at past moments.

Until the loan book keeps a business date of its own, the clock travels with time-machine, an optional extra
(`pip install -e ".[demo]"`; `make run` and `make test` install it). Production installs never need it.
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ImproperlyConfigured

try:
    import time_machine
except ImportError as exc:  # a third-party extra, not our code: say how to get it
    raise ImproperlyConfigured('The demo data needs the demo extra: pip install -e ".[demo]"') from exc


def at(moment: dt.datetime):
    """Run the real services as of `moment`: every timestamp, SLA clock and schedule they write is that moment's."""
    return time_machine.travel(moment, tick=False)

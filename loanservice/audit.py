"""Writing to the append-only audit trail. Every service that changes state calls audit_record.

The trail cannot be changed (DESIGN.md "Trust rules", docs/security.md):
- the database refuses UPDATE and DELETE on it (triggers, migration 0003; the models refuse them too);
- each event is a link in a hash chain, one chain per audited object (`object_type:object_id`; events about no
  object chain per action and day). An event's `hash` is SHA-256 over its content and `prev_hash`, the hash of
  the link before it (version 2: over the content's digest, seq and `prev_hash`, so that PostgreSQL links it in
  the statement that inserts it: `_APPEND_ONE`). Appending locks only that chain's head row (AuditChainHead,
  until commit), so events about different objects are written in parallel; two events of one object take
  consecutive positions (one upsert creates or locks the head and moves it on);
- each day's chain heads are anchored (AuditAnchor, `audit_anchor_day`), so cutting or rewriting a whole chain
  shows too, and each anchor is signed with the audit key of the bank's sandbox CA (AuditAnchorSignature), so
  rewriting events, heads and anchor together shows as well; `python manage.py audit_verify` and the nightly task
  check chains, heads, anchors and their signatures;
- before/after values and reasons hold personal data only masked (loanservice.masking.mask_personal), so
  anonymisation never needs to touch the trail.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, models, transaction
from django.utils import timezone

from . import pki
from .masking import mask_personal, mask_text
from .models import AuditAnchor, AuditAnchorSignature, AuditChainHead, AuditEvent

HASH_FIELDS = ("actor_id", "actor_label", "action", "object_type", "object_id", "from_state", "to_state", "reason",
               "data", "ip")


def _actor_label(actor) -> str:
    if actor is None:
        return "system"
    return actor.get_username()


def chain_key(object_type: str, object_id: str, action: str, at: dt.datetime) -> str:
    """One chain per object; events about no object chain per action and day (never one chain for everything)."""
    if object_type or object_id:
        return f"{object_type}:{object_id}"[:120]
    return f"-:{action}:{timezone.localtime(at).date().isoformat()}"[:120]


def _canonical_at(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat(timespec="microseconds")


HASH_VERSION = 2  # what new events follow (AuditEvent.hash_version)


def content_digest(row: dict, *, chain: str) -> str:
    """SHA-256 (hex) of an event's content and its chain, not yet its place in it (hash version 2)."""
    body = {k: row.get(k) for k in HASH_FIELDS}
    body.update(v=2, chain=chain, at=_canonical_at(row["at"]))
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def link_hash(content: str, *, seq: int, prev_hash: str) -> str:
    """The link: SHA-256 (hex) over the content's digest, the position and the hash before. The database computes
    the same (_APPEND_ONE) when it appends a single event."""
    return hashlib.sha256(f"{content}\n{seq}\n{prev_hash}".encode()).hexdigest()


def event_hash(row: dict, *, chain: str, seq: int, prev_hash: str) -> str:
    """SHA-256 (hex) of an event's content and its place in its chain. `row` holds the HASH_FIELDS and `at` as
    stored (a dict from .values() or the keyword arguments of a new event) and, for a stored event, its
    `hash_version` (1 when absent: the definition before version 2)."""
    if row.get("hash_version", 1) == 2:
        return link_hash(content_digest(row, chain=chain), seq=seq, prev_hash=prev_hash)
    body = {k: row.get(k) for k in HASH_FIELDS}
    body.update(v=1, chain=chain, seq=seq, prev=prev_hash, at=_canonical_at(row["at"]))
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _clean(values: dict) -> dict:
    """What is stored: personal data masked, JSON as the database gives it back, the IP as the field stores it."""
    values["data"] = json.loads(json.dumps(mask_personal(values.get("data") or {})))
    values["reason"] = mask_text(values.get("reason") or "")
    ip = values.get("ip")
    values["ip"] = AuditEvent._meta.get_field("ip").to_python(ip) if ip else None
    return values


_ADVANCE = """
INSERT INTO {table} (chain, seq, hash, prev_hash, updated_at) VALUES (%s, %s, '', '', %s)
ON CONFLICT (chain) DO UPDATE SET seq = {table}.seq + excluded.seq, updated_at = excluded.updated_at
RETURNING seq, hash
"""

_COLUMNS = ("at", *HASH_FIELDS, "chain", "seq", "prev_hash", "hash", "hash_version")

# One event in one statement (PostgreSQL): the upsert creates or locks the chain's head, moves it one place on and
# computes the new link from the content's digest and the hash it held, keeping that hash as prev_hash; the event
# is inserted from what the upsert returns. ON CONFLICT DO UPDATE works on the newest committed head (a writer of
# the same chain waits for the one before to commit), so two events never take one place or link to a stale hash.
_APPEND_ONE = """
WITH head AS (
    INSERT INTO {head} AS h (chain, seq, hash, prev_hash, updated_at)
    VALUES (%s, 1, encode(sha256(convert_to(%s || E'\\n1\\n', 'UTF8')), 'hex'), '', %s)
    ON CONFLICT (chain) DO UPDATE SET
        seq = h.seq + 1, prev_hash = h.hash, updated_at = excluded.updated_at,
        hash = encode(sha256(convert_to(%s || E'\\n' || (h.seq + 1)::text || E'\\n' || h.hash, 'UTF8')), 'hex')
    RETURNING chain, seq, prev_hash, hash
)
INSERT INTO {event} ({columns})
SELECT {params}, head.chain, head.seq, head.prev_hash, head.hash, {version} FROM head
RETURNING id, seq, prev_hash, hash
"""


def _advance_head(chain: str, count: int, now) -> tuple[int, str]:
    """Create or lock the chain's head and move it `count` places on, in one statement; returns the head's new
    position and the hash it held (the link the first new event chains to). The row stays locked until commit,
    so the next writer of this chain waits here, and writers of other chains do not."""
    with connection.cursor() as cursor:
        cursor.execute(_ADVANCE.format(table=AuditChainHead._meta.db_table),
                       [chain, count, connection.ops.adapt_datetimefield_value(now)])
        seq, prev_hash = cursor.fetchone()
    return seq, prev_hash


def _db_values(row: dict) -> list:
    """The HASH_FIELDS and `at` of a cleaned row as the driver takes them (what Model.save() would send)."""
    fields = AuditEvent._meta
    return [fields.get_field(name).get_db_prep_save(row[name], connection) for name in ("at", *HASH_FIELDS)]


def _event(row: dict, pk: int, seq: int, prev_hash: str, digest: str) -> AuditEvent:
    event = AuditEvent(id=pk, seq=seq, prev_hash=prev_hash, hash=digest, hash_version=HASH_VERSION, **row)
    event._state.adding, event._state.db = False, connection.alias
    return event


def _append_one(row: dict, now) -> AuditEvent:
    content = content_digest(row, chain=row["chain"])
    values = _db_values(row)
    sql = _APPEND_ONE.format(head=AuditChainHead._meta.db_table, event=AuditEvent._meta.db_table,
                             columns=", ".join(_COLUMNS), params=", ".join(["%s"] * len(values)), version=HASH_VERSION)
    with connection.cursor() as cursor:
        cursor.execute(sql, [row["chain"], content, connection.ops.adapt_datetimefield_value(now), content, *values])
        pk, seq, prev_hash, digest = cursor.fetchone()
    return _event(row, pk, seq, prev_hash, digest)


def _append_many(rows: list[dict], counts: dict[str, int], now) -> list[AuditEvent]:
    """Several events: each chain's head moved on by its count (one statement per chain, in one order for every
    writer: two never wait on each other's heads), the links computed here, then the events inserted and the heads
    given their last hashes in one statement."""
    links: dict[str, list] = {}
    for chain in sorted(counts):
        seq, prev_hash = _advance_head(chain, counts[chain], now)
        links[chain] = [seq - counts[chain], prev_hash, prev_hash]  # position, hash, the hash before it
    placed = []
    for row in rows:
        link = links[row["chain"]]
        seq = link[0] + 1
        digest = link_hash(content_digest(row, chain=row["chain"]), seq=seq, prev_hash=link[1])
        placed.append((row, seq, link[1], digest))
        link[0], link[2], link[1] = seq, link[1], digest
    event_values, event_params = [], []
    for row, seq, prev_hash, digest in placed:
        event_values.append("(" + ", ".join(["%s"] * len(_COLUMNS)) + ")")
        event_params += [*_db_values(row), row["chain"], seq, prev_hash, digest, HASH_VERSION]
    head_values, head_params = [], []
    for chain, (_seq, digest, before) in links.items():
        head_values.append("(%s, %s, %s)")
        head_params += [chain, digest, before]
    head = AuditChainHead._meta.db_table
    sql = (f"WITH moved AS (UPDATE {head} SET hash = v.hash, prev_hash = v.prev FROM (VALUES {', '.join(head_values)})"
           f" AS v(chain, hash, prev) WHERE {head}.chain = v.chain) "
           f"INSERT INTO {AuditEvent._meta.db_table} ({', '.join(_COLUMNS)}) VALUES {', '.join(event_values)} RETURNING id")
    with connection.cursor() as cursor:
        cursor.execute(sql, head_params + event_params)
        ids = [r[0] for r in cursor.fetchall()]
    return [_event(row, pk, seq, prev_hash, digest) for pk, (row, seq, prev_hash, digest) in zip(ids, placed, strict=True)]


def _append_portable(rows: list[dict], counts: dict[str, int], now) -> list[AuditEvent]:
    """Any database (SQLite, the embedded default): the same chain through the ORM, three statements a batch."""
    links: dict[str, list] = {}
    for chain in sorted(counts):
        seq, prev_hash = _advance_head(chain, counts[chain], now)
        links[chain] = [seq - counts[chain], prev_hash, prev_hash]
    events = []
    for row in rows:
        link = links[row["chain"]]
        seq = link[0] + 1
        digest = link_hash(content_digest(row, chain=row["chain"]), seq=seq, prev_hash=link[1])
        events.append(AuditEvent(seq=seq, prev_hash=link[1], hash=digest, hash_version=HASH_VERSION, **row))
        link[0], link[2], link[1] = seq, link[1], digest
    events = AuditEvent.objects.bulk_create(events)
    for chain, (_seq, digest, before) in links.items():
        AuditChainHead.objects.filter(chain=chain).update(hash=digest, prev_hash=before)
    return events


def _append(rows: list[dict]) -> list[AuditEvent]:
    now = timezone.now()
    for row in rows:
        row.setdefault("at", now)
        _clean(row)
        row["chain"] = chain_key(row["object_type"], row["object_id"], row["action"], row["at"])
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["chain"]] = counts.get(row["chain"], 0) + 1
    with transaction.atomic(savepoint=False):
        if connection.vendor != "postgresql":
            return _append_portable(rows, counts, now)
        if len(rows) == 1:
            return [_append_one(rows[0], now)]
        return _append_many(rows, counts, now)


def _row(*, actor, action, obj=None, object_type="", object_id="", from_state="", to_state="", reason="", data=None,
         ip=None) -> dict:
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or obj.pk
    return {"actor_id": actor.pk if getattr(actor, "pk", None) else None, "actor_label": _actor_label(actor),
            "action": action, "object_type": object_type or "", "object_id": str(object_id if object_id is not None else ""),
            "from_state": from_state or "", "to_state": to_state or "", "reason": reason or "", "data": data or {},
            "ip": ip}


def audit_record(
    *,
    actor,
    action: str,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: Any = "",
    from_state: str = "",
    to_state: str = "",
    reason: str = "",
    data: dict | None = None,
    ip: str | None = None,
) -> AuditEvent:
    return _append([_row(actor=actor, action=action, obj=obj, object_type=object_type, object_id=object_id,
                         from_state=from_state, to_state=to_state, reason=reason, data=data, ip=ip)])[0]


def audit_record_many(events: list[dict]) -> list[AuditEvent]:
    """Several events in one INSERT (e.g. the seven data pulls of a submission); each dict takes the keyword
    arguments of audit_record."""
    if not events:
        return []
    return _append([_row(**e) for e in events])


def audit_trail(obj: models.Model):
    return AuditEvent.objects.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk)).select_related(
        "actor"
    )


# --- verification and daily anchors ---------------------------------------------------------------------------

@dataclass
class Break:
    kind: str  # altered, link, gap, head, anchor, signature
    chain: str
    seq: int | None = None
    event_id: int | None = None
    detail: str = ""

    def __str__(self) -> str:
        where = f"{self.chain}#{self.seq}" if self.seq is not None else self.chain
        ident = f" (event {self.event_id})" if self.event_id else ""
        return f"{self.kind}: {where}{ident} {self.detail}".rstrip()


@dataclass
class VerifyResult:
    events: int = 0
    chains: int = 0
    anchors: int = 0
    breaks: list[Break] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks


def _day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    tz = timezone.get_current_timezone()
    start = dt.datetime.combine(day, dt.time.min, tzinfo=tz)
    return start, dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=tz)


_VALUES = ("id", "at", "chain", "seq", "prev_hash", "hash", "hash_version", *HASH_FIELDS)


def _check_heads(chains: dict[str, tuple[int, str]], result: VerifyResult, *, full: bool) -> None:
    names = list(chains)
    seen = set()
    for i in range(0, len(names), 1000):
        for head in AuditChainHead.objects.filter(chain__in=names[i:i + 1000]):
            seen.add(head.chain)
            last_seq, last_hash = chains[head.chain]
            if (head.seq, head.hash) != (last_seq, last_hash):
                result.breaks.append(Break("head", head.chain, head.seq, detail=(
                    f"head at #{head.seq}, last event stored #{last_seq}: events were removed or the head was moved")))
    for name in set(names) - seen:
        result.breaks.append(Break("head", name, detail="chain has no head"))
    if full:
        for head in AuditChainHead.objects.filter(seq__gt=0).exclude(chain__in=names).iterator():
            result.breaks.append(Break("head", head.chain, head.seq, detail="the head names events that are gone"))


def verify_chains(since: dt.date | None = None, result: VerifyResult | None = None) -> VerifyResult:
    """Recompute every event's hash (from `since`, else all) and check each link, position and chain head."""
    result = result or VerifyResult()
    qs = AuditEvent.objects.order_by("chain", "seq")
    if since:
        qs = qs.filter(at__gte=_day_bounds(since)[0])
    chains: dict[str, tuple[int, str]] = {}
    prev = None
    for row in qs.values(*_VALUES).iterator(chunk_size=5000):
        result.events += 1
        chain, seq = row["chain"], row["seq"]
        if event_hash(row, chain=chain, seq=seq, prev_hash=row["prev_hash"]) != row["hash"]:
            result.breaks.append(Break("altered", chain, seq, row["id"], "content does not match its hash"))
        if prev is not None and prev["chain"] == chain:
            expect_seq, expect_hash = prev["seq"] + 1, prev["hash"]
        elif seq == 1:
            expect_seq, expect_hash = 1, ""
        elif since:
            before = AuditEvent.objects.filter(chain=chain, seq=seq - 1).values_list("hash", flat=True).first()
            expect_seq, expect_hash = (seq, before) if before is not None else (1, "")
        else:
            expect_seq, expect_hash = 1, ""
        if seq != expect_seq:
            result.breaks.append(Break("gap", chain, seq, row["id"], f"expected #{expect_seq}: events are missing"))
        elif row["prev_hash"] != expect_hash:
            result.breaks.append(Break("link", chain, seq, row["id"], "previous hash does not match the event before"))
        chains[chain] = (seq, row["hash"])
        prev = row
    result.chains = len(chains)
    _check_heads(chains, result, full=since is None)
    return result


def anchor_digest(day: dt.date) -> tuple[str, int, int]:
    """(digest, chains, events) over the last link each chain reached on `day` (bank time)."""
    start, end = _day_bounds(day)
    last: dict[str, tuple[int, str]] = {}
    events = 0
    for chain, seq, digest in (AuditEvent.objects.filter(at__gte=start, at__lt=end).order_by("chain", "seq")
                               .values_list("chain", "seq", "hash").iterator(chunk_size=5000)):
        last[chain] = (seq, digest)
        events += 1
    text = "\n".join(f"{c}\t{s}\t{h}" for c, (s, h) in sorted(last.items()))
    return hashlib.sha256(f"{day.isoformat()}\n{text}".encode()).hexdigest(), len(last), events


def anchor_payload(*, day: dt.date, digest: str, chains: int, events: int) -> bytes:
    """What the bank signs for a day's anchor."""
    return f"loanservice-audit-anchor/v1\n{day.isoformat()}\n{digest}\n{chains}\n{events}".encode()


def _payload_of(anchor: AuditAnchor) -> bytes:
    return anchor_payload(day=anchor.day, digest=anchor.digest, chains=anchor.chains, events=anchor.events)


def audit_anchor_sign(anchor: AuditAnchor) -> AuditAnchorSignature:
    """Sign an anchor with the audit key of the bank's sandbox CA (once; the signature is append-only)."""
    existing = AuditAnchorSignature.objects.filter(anchor=anchor).first()
    if existing:
        return existing
    signer = pki.audit_signer()
    signature = base64.b64encode(pki.sign_bytes(signer.key, _payload_of(anchor))).decode()
    with transaction.atomic():
        record, _created = AuditAnchorSignature.objects.get_or_create(
            anchor=anchor, defaults={"signature": signature, "certificate_pem": pki.cert_pem(signer.certificate)})
    return record


def audit_anchor_day(day: dt.date) -> AuditAnchor:
    """Store the day's anchor and the bank's signature over it (once: an anchor is never recomputed over what it
    anchors)."""
    existing = AuditAnchor.objects.filter(day=day).first()
    if existing:
        return existing
    digest, chains, events = anchor_digest(day)
    with transaction.atomic():
        anchor, created = AuditAnchor.objects.get_or_create(day=day, defaults={"digest": digest, "chains": chains,
                                                                               "events": events})
        if created:
            audit_anchor_sign(anchor)
    return anchor


def audit_anchor_sign_missing() -> list[AuditAnchor]:
    """Sign the anchors stored before anchors were signed, each only if it still matches the trail (one that does
    not is left unsigned: audit_verify reports it)."""
    signed = []
    for anchor in AuditAnchor.objects.filter(signature__isnull=True).order_by("day"):
        if anchor_digest(anchor.day)[0] == anchor.digest:
            audit_anchor_sign(anchor)
            signed.append(anchor)
    return signed


def audit_anchor_through(day: dt.date) -> list[AuditAnchor]:
    """Anchor every day not anchored yet, from the day after the last anchor (or the first event) through `day`."""
    last = AuditAnchor.objects.order_by("-day").values_list("day", flat=True).first()
    if last is not None:
        start = last + dt.timedelta(days=1)
    else:
        first = AuditEvent.objects.order_by("at").values_list("at", flat=True).first()
        if first is None:
            return []
        start = timezone.localtime(first).date()
    anchors = []
    while start <= day:
        anchors.append(audit_anchor_day(start))
        start += dt.timedelta(days=1)
    audit_anchor_sign_missing()
    return anchors


def verify_anchors(since: dt.date | None = None, result: VerifyResult | None = None) -> VerifyResult:
    result = result or VerifyResult()
    qs = AuditAnchor.objects.order_by("day")
    if since:
        qs = qs.filter(day__gte=since)
    ca = pki.sandbox_ca()
    for anchor in qs.select_related("signature"):
        result.anchors += 1
        digest, chains, _events = anchor_digest(anchor.day)
        if digest != anchor.digest:
            result.breaks.append(Break("anchor", f"day {anchor.day.isoformat()}", detail=(
                f"the day's chain heads no longer match its anchor ({chains} chains now, {anchor.chains} anchored)")))
        problem = _signature_problem(anchor, ca)
        if problem:
            result.breaks.append(Break("signature", f"day {anchor.day.isoformat()}", detail=problem))
    return result


def _signature_problem(anchor: AuditAnchor, ca: pki.SandboxCA) -> str:
    """Why the anchor's signature does not hold ('' when it does): missing, a certificate not issued by the bank's
    CA (or not valid when it signed), or a signature that does not match the anchor as stored."""
    try:
        record = anchor.signature
    except AuditAnchorSignature.DoesNotExist:
        return "the anchor is not signed"
    try:
        cert = pki.load_cert(record.certificate_pem)
        signature = base64.b64decode(record.signature, validate=True)
    except ValueError:
        return "the signature or its certificate cannot be read"
    if not ca.issued_by_root(cert, at=record.signed_at):
        return "the signing certificate was not issued by the bank's CA"
    if not pki.signature_valid(cert, signature, _payload_of(anchor)):
        return "the anchor does not match the bank's signature over it"
    return ""


def audit_verify(since: dt.date | None = None) -> VerifyResult:
    result = verify_chains(since)
    return verify_anchors(since, result)

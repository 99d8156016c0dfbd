"""`python manage.py personal_data_rotate`: every encrypted personal-data field of every model written again under
the newest key of FIELD_ENCRYPTION_KEYS, and every blind index recomputed under BLIND_INDEX_KEY.

Key rotation: put the new key first in FIELD_ENCRYPTION_KEYS (keep the old ones after it), deploy, run this, then
drop the old keys. A new BLIND_INDEX_KEY takes effect for lookups at once, so run this right after changing it
(lookups by the old index miss until it has run)."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from loanservice.audit import audit_record
from loanservice.personal_data import encrypt_rows, encrypted_fields, encrypted_models


class Command(BaseCommand):
    help = "Re-encrypt personal data under the newest key and recompute blind indexes."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, batch_size: int, **options):
        counts = {}
        for model in encrypted_models():
            label = model._meta.label_lower
            with transaction.atomic():
                counts[label] = encrypt_rows(model, batch_size=batch_size)
            self.stdout.write(f"{label}: {counts[label]} rows ({', '.join(encrypted_fields(model))})")
        audit_record(actor=None, action="personal_data.rotate", data={"rows": counts})

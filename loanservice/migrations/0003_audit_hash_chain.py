"""Hash chains on the audit trail, and the database refusing UPDATE and DELETE on it (docs/security.md).

Events written before this migration are chained here, in the order they were written (at, id), one chain per
object, with their personal data masked first (the one time the trail is rewritten: before it is sealed). Then
the triggers: on PostgreSQL a trigger function raising on UPDATE or DELETE of an audit event, a chain anchor;
on SQLite a trigger refusing UPDATE only (Django empties SQLite tables between transactional tests with DELETE,
and SQLite drops triggers when a later migration rebuilds the table: there the models' own refusal and the hash
chains hold; production runs on PostgreSQL).
"""

import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


PG_FUNCTION = """
CREATE OR REPLACE FUNCTION loanservice_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'append-only table %: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
"""
TABLES = ["loanservice_auditevent", "loanservice_auditanchor"]


def backfill(apps, schema_editor):
    from loanservice.audit import _clean, chain_key, event_hash

    AuditEvent = apps.get_model("loanservice", "AuditEvent")
    AuditChainHead = apps.get_model("loanservice", "AuditChainHead")
    heads: dict[str, tuple[int, str]] = {}
    batch = []
    fields = ["data", "reason", "ip", "chain", "seq", "prev_hash", "hash"]
    for event in AuditEvent.objects.order_by("at", "id").iterator(chunk_size=2000):
        row = _clean({"data": event.data, "reason": event.reason, "ip": event.ip})
        event.data, event.reason, event.ip = row["data"], row["reason"], row["ip"]
        event.chain = chain_key(event.object_type, event.object_id, event.action, event.at)
        seq, prev = heads.get(event.chain, (0, ""))
        event.seq, event.prev_hash = seq + 1, prev
        values = {f: getattr(event, f) for f in ("actor_id", "actor_label", "action", "object_type", "object_id",
                                                 "from_state", "to_state", "reason", "data", "ip", "at")}
        event.hash = event_hash(values, chain=event.chain, seq=event.seq, prev_hash=prev)
        heads[event.chain] = (event.seq, event.hash)
        batch.append(event)
        if len(batch) >= 2000:
            AuditEvent.objects.bulk_update(batch, fields)
            batch = []
    if batch:
        AuditEvent.objects.bulk_update(batch, fields)
    AuditChainHead.objects.bulk_create([AuditChainHead(chain=c, seq=s, hash=h) for c, (s, h) in heads.items()],
                                       batch_size=2000)


def seal(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    with schema_editor.connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute(PG_FUNCTION)
            for table in TABLES:
                cursor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
                cursor.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                               "FOR EACH ROW EXECUTE FUNCTION loanservice_append_only()")
        elif vendor == "sqlite":
            for table in TABLES:
                cursor.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
                cursor.execute(f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
                               f"BEGIN SELECT RAISE(ABORT, 'append-only table {table}: UPDATE refused'); END")


def unseal(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    with schema_editor.connection.cursor() as cursor:
        for table in TABLES:
            if vendor == "postgresql":
                cursor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            elif vendor == "sqlite":
                cursor.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
        if vendor == "postgresql":
            cursor.execute("DROP FUNCTION IF EXISTS loanservice_append_only()")


class Migration(migrations.Migration):

    dependencies = [
        ('loanservice', '0002_business_date'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='AuditAnchor',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('day', models.DateField(unique=True)),
                ('digest', models.CharField(max_length=64)),
                ('chains', models.PositiveIntegerField(default=0)),
                ('events', models.PositiveIntegerField(default=0)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                'verbose_name': '审计日锚 audit daily anchor',
                'verbose_name_plural': '审计日锚 audit daily anchors',
                'ordering': ['-day'],
            },
        ),
        migrations.CreateModel(
            name='AuditChainHead',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('chain', models.CharField(max_length=120, unique=True)),
                ('seq', models.PositiveBigIntegerField(default=0)),
                ('hash', models.CharField(blank=True, max_length=64)),
                ('updated_at', models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                'verbose_name': '审计链头 audit chain head',
                'verbose_name_plural': '审计链头 audit chain heads',
            },
        ),
        migrations.AddField(
            model_name='auditevent',
            name='chain',
            field=models.CharField(blank=True, default='', max_length=120, verbose_name='链 chain'),
        ),
        migrations.AddField(
            model_name='auditevent',
            name='hash',
            field=models.CharField(blank=True, default='', max_length=64, verbose_name='哈希 hash'),
        ),
        migrations.AddField(
            model_name='auditevent',
            name='prev_hash',
            field=models.CharField(blank=True, default='', max_length=64, verbose_name='前一事件哈希 previous hash'),
        ),
        migrations.AddField(
            model_name='auditevent',
            name='seq',
            field=models.PositiveBigIntegerField(default=0, verbose_name='链内序号 position in chain'),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name='auditevent',
            constraint=models.UniqueConstraint(fields=('chain', 'seq'), name='auditevent_chain_seq_unique'),
        ),
        migrations.RunPython(seal, unseal),
    ]

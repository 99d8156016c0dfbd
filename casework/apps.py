from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _seed_reference(sender, using="default", **kwargs):
    # After the last stage app has migrated: the defaults of DESIGN.md exist as data in every database
    # (idempotent; admin edits are kept). Also runs after a test flush, so tests always see them.
    if sender.name != "postloan":
        return
    from casework.reference_data import seed_reference_data

    seed_reference_data()


class CaseworkConfig(AppConfig):
    name = "casework"
    verbose_name = "业务流程 / Casework"

    def ready(self):
        post_migrate.connect(_seed_reference, dispatch_uid="casework.seed_reference")

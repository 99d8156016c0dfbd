import os

from celery import Celery, Task
from celery.signals import worker_process_init
from django.conf import settings
from django.utils import translation

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


class DefaultLanguageTask(Task):
    """Every task runs in the default language (settings.LANGUAGE_CODE).

    A worker has no request, so it does anyway; eager tasks (the embedded default) and `delay_on_commit` run in
    the request's thread and would otherwise inherit the language of whoever triggered them, writing, say, the
    RM's new-case notice in the applicant's English.
    """

    def __call__(self, *args, **kwargs):
        with translation.override(settings.LANGUAGE_CODE):
            return super().__call__(*args, **kwargs)


app = Celery("loanservice", task_cls=DefaultLanguageTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()  # every installed app's tasks.py: the kernel's, the stages', casework's


@worker_process_init.connect
def _settle(**_kwargs) -> None:
    """Each prefork process, once it has loaded the tasks: the heap frozen, the collector's young generation widened
    (config/process.py)."""
    from config.process import settle

    settle()

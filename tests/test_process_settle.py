"""A long-lived process settles once its code is loaded (config/process.py): the heap frozen out of the cyclic
collector's sight, the young generation widened; gunicorn's workers and Celery's processes both call it."""

from __future__ import annotations

import gc
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def gc_restored():
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_settle_freezes_the_heap_and_widens_the_young_generation(gc_restored, monkeypatch):
    from config.process import settle

    monkeypatch.setenv("GC_GEN0_THRESHOLD", "12345")
    gc.unfreeze()
    settle()
    assert gc.get_freeze_count() > 10_000  # Django's modules, the URL patterns, the models: all out of the scan
    assert gc.get_threshold()[0] == 12345


def test_settle_can_be_turned_off(gc_restored, monkeypatch):
    from config.process import settle

    monkeypatch.setenv("GC_GEN0_THRESHOLD", "0")
    gc.unfreeze()
    before = gc.get_threshold()
    settle()
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == before


def test_gunicorn_and_celery_processes_settle(monkeypatch):
    from celery.signals import worker_process_init

    import config.process

    calls = []
    monkeypatch.setattr(config.process, "settle", lambda: calls.append("settled"))
    conf = runpy.run_path(str(ROOT / "config" / "gunicorn.conf.py"))
    conf["post_worker_init"](object())  # what gunicorn calls in each worker after loading the application
    worker_process_init.send(sender=None)  # what Celery sends in each prefork process
    assert calls == ["settled", "settled"]

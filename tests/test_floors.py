"""The house's floors (docs/architecture.md) and the entry points that name them.

import-linter's layers contract (pyproject.toml) is the rule; these tests run it, print the package graph it
checks, and import every dotted path that import-linter cannot see: settings, Celery, gunicorn, compose, Makefile.
"""

from __future__ import annotations

import collections
import importlib
import re
from pathlib import Path

import grimp
import pytest
from django.conf import settings
from django.urls import reverse

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["config", "casework", "analytics", "marketing", "postloan", "contracts", "approvals", "underwriting",
            "applications", "ledger", "loanservice"]


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph(*PACKAGES, cache_dir=None)


def _package_edges(graph) -> dict[tuple[str, str], int]:
    edges = collections.Counter()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            a, b = module.split(".")[0], imported.split(".")[0]
            if a != b:
                edges[(a, b)] += 1
    return edges


def test_the_layers_contract_holds():
    from importlinter.cli import lint_imports

    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True) == 0


def test_the_package_graph_has_no_loop(graph):
    edges = _package_edges(graph)
    print("\npackage imports (module pairs):")
    for (a, b), count in sorted(edges.items(), key=lambda e: (PACKAGES.index(e[0][0]), PACKAGES.index(e[0][1]))):
        print(f"  {a:13s} → {b:13s} {count}")
    mutual = sorted({tuple(sorted(pair)) for pair in edges if (pair[1], pair[0]) in edges})
    assert mutual == [], f"packages importing each other: {mutual}"
    # No loop of any length: every edge goes from a higher floor to a lower one.
    upward = [(a, b) for a, b in edges if PACKAGES.index(a) > PACKAGES.index(b)]
    assert upward == [], f"imports going up a floor: {upward}"


def test_the_kernel_imports_no_stage(graph):
    above = set(PACKAGES) - {"loanservice"}
    reached = {m.split(".")[0] for m in graph.find_upstream_modules("loanservice", as_package=True)} & above
    assert reached == set()


def _dotted(path: str):
    module, _, attr = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return importlib.import_module(path)


def test_every_dotted_path_in_settings_imports():
    paths = [settings.ROOT_URLCONF, settings.WSGI_APPLICATION, settings.REST_FRAMEWORK["EXCEPTION_HANDLER"],
             settings.SMS_BACKEND, settings.CONTRACT_SIGNING_BACKEND,
             *settings.MIDDLEWARE, *settings.AUTHENTICATION_BACKENDS,
             *settings.TEMPLATES[0]["OPTIONS"]["context_processors"],
             *settings.REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]]
    for path in paths:
        assert _dotted(path) is not None, path
    assert reverse("home") == "/"


def test_celery_finds_every_task_under_its_pinned_name():
    from config.celery import app

    app.loader.import_default_modules()
    registered = set(app.tasks)
    # Beat's database rows and queued messages hold these names: they never change with the files.
    for name in ("loanservice.tasks.score_and_route", "loanservice.tasks.fast_track_complete",
                 "loanservice.tasks.sla_check", "loanservice.tasks.outbox_sweep",
                 "postloan.tasks.nightly_monitoring", "postloan.tasks.renewal_offers"):
        assert name in registered, name
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in registered, entry["task"]


def test_entry_points_name_modules_that_exist():
    """gunicorn's WSGI path, `celery -A`, DJANGO_SETTINGS_MODULE in every file that starts the project."""
    found = collections.defaultdict(set)
    for name in ("Makefile", "Dockerfile", "docker-compose.yml", "manage.py", "README.md", "pyproject.toml",
                 "bench/common.py", "tests/worker.py"):
        text = (ROOT / name).read_text()
        for conf, wsgi in re.findall(r"gunicorn[\"', ]+(?:-c[\"', ]+([\w./]+)[\"', ]+)?(\w+\.wsgi)\b", text):
            found["wsgi"].add(wsgi)
            found["gunicorn.conf"] |= {conf} if conf else set()
        found["celery"] |= set(re.findall(r"-A[\"', ]+(\w+)[\"', ]+(?:worker|beat)\b", text))
        found["settings"] |= set(re.findall(r"DJANGO_SETTINGS_MODULE[\"'=:, ]+[\"']?([\w.]+)", text))
    assert found["wsgi"] == {"config.wsgi"}
    assert found["gunicorn.conf"] == {"config/gunicorn.conf.py"}  # one file of gunicorn settings, and it exists
    assert (ROOT / "config" / "gunicorn.conf.py").is_file()
    assert found["celery"] == {"config"}
    assert found["settings"] == {"config.settings"}
    assert importlib.import_module("config.wsgi").application is not None
    assert importlib.import_module("config").celery_app.main == "loanservice"


def test_no_two_apps_shadow_a_command_or_a_tag_library():
    from django.apps import apps

    seen = collections.defaultdict(list)
    for config in apps.get_app_configs():
        base = Path(config.path)
        for kind, folder in (("command", base / "management" / "commands"), ("tag library", base / "templatetags")):
            for file in folder.glob("*.py") if folder.is_dir() else []:
                if file.stem != "__init__":
                    seen[(kind, file.stem)].append(config.label)
    clashes = {key: labels for key, labels in seen.items() if len(labels) > 1}
    assert clashes == {}


def test_no_import_inside_a_function_reaches_another_package():
    """An import inside a function is no way round a floor: none reaches another of the project's packages (those
    left import heavy optional libraries on use, or their own package from AppConfig.ready)."""
    import ast

    found = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Import):
                        names = [a.name for a in inner.names]
                    elif isinstance(inner, ast.ImportFrom) and inner.level == 0 and inner.module:
                        names = [inner.module]
                    else:
                        continue
                    found += [f"{path.relative_to(ROOT)}:{inner.lineno} {n}" for n in names
                              if n.split(".")[0] in PACKAGES and n.split(".")[0] != package]
    assert found == []

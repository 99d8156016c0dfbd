"""Helpers for the approvals and SLA tests: cheap password hashing and another member of staff (cases come from
tests/factories.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def fast_passwords(settings):
    # Demo users are created with real password hashing; a cheap hasher keeps setup in milliseconds.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def staff_user(username: str, role: str, branch_code: str, *, supervisor=None):
    """Another member of staff (there is no self-service for staff accounts: admins create them)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from loanservice.models import Branch, Profile

    user = get_user_model().objects.create_user(username=username, password="x", email=f"{username}@bank.example")
    Profile.objects.create(user=user, branch=Branch.objects.get(code=branch_code), display_name=username, supervisor=supervisor)
    user.groups.add(Group.objects.get(name=role))
    return user

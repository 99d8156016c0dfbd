"""The FSM mixin every stateful model uses: django-fsm-2's optimistic ConcurrentTransitionMixin with a
thread-safe refresh_from_db.

django-fsm-2 refreshes a protected state field by switching `protected` off and on again on the Field object,
which all threads share: under gunicorn's threads, one request's refresh could switch it back on in the middle
of another's, and that refresh raised "Direct status modification is not allowed" (seen at the submit endpoint
under load, tests/test_row_locks.py). This refresh leaves the shared flag alone: it drops the instance's own
cached state value first, which is what the protection checks, then lets Django load every field.
"""

from __future__ import annotations

from django_fsm import ConcurrentTransitionMixin as _ConcurrentTransitionMixin
from django_fsm import FSMModelMixin


class ConcurrentTransitionMixin(_ConcurrentTransitionMixin):
    def refresh_from_db(self, using=None, fields=None, from_queryset=None):
        # Every protected field, also when `fields` names others: Django copies whatever the fresh instance has
        # loaded, and the FSM mixin's __init__ always loads the state fields.
        protected = self._get_protected_fsm_fields()
        if fields is None:  # what Django would reload: the fields loaded now (popping below would defer the state)
            deferred = self.get_deferred_fields()
            fields = [f.attname for f in self._meta.concrete_fields if f.attname not in deferred or f.attname in protected]
        for name in protected:
            self.__dict__.pop(name, None)
        super(FSMModelMixin, self).refresh_from_db(using=using, fields=fields, from_queryset=from_queryset)
        self._update_initial_state()

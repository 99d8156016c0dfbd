"""四眼原则 (four eyes): a request one person makes and a second person decides. The shape every such request shares
(who asked, when, why; the decision, who made it, when, with what comment), its approve/reject transitions, the
rule that the decider is never the requester, and the service steps that decide one under its row lock.

The concrete requests (postloan.ApprovalRequest, postloan.ProvisionOverlay, creditlines.LineChangeRequest) inherit
it, add what is asked (their payload), and name the rules permission that says who may decide them: a role and
`~requested_it`. A concrete model may redeclare a field where its column differs (the overlay is proposed by close
of business before anyone asks, so its requester is nullable); the columns stay the app's own.
"""

from __future__ import annotations

from typing import TypeVar

import rules
from django.conf import settings
from django.db import models
from django.db.models.signals import class_prepared
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import FSMField, has_transition_perm, transition

from .errors import Conflict
from .fsm import ConcurrentTransitionMixin
from .roles import can, permission_check


@rules.predicate
def requested_it(user, request) -> bool:
    """The user is the request's requester (its submitter): the second pair of eyes must be someone else."""
    return request.requested_by_id == user.pk


class FourEyesRequest(ConcurrentTransitionMixin, models.Model):
    """A change waiting for a second person: approved or rejected once, by someone holding `decide_permission` on it."""

    class Status(models.TextChoices):
        PENDING = "pending", _("待审批 pending")
        APPROVED = "approved", _("已批准 approved")
        REJECTED = "rejected", _("已否决 rejected")

    # The rules permission on the request that approve/reject carry: who may decide, never the requester (requested_it).
    decide_permission: str

    reason = models.CharField(max_length=500)
    status = FSMField(max_length=10, choices=Status.choices, default=Status.PENDING, protected=True, db_index=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    comment = models.CharField(max_length=500, blank=True)

    class Meta:
        abstract = True

    def __init_subclass__(cls, **kwargs):
        # django-fsm keeps a transition's bookkeeping (its field) on the function object and rebinds it to the
        # field that collects it, so approve and reject inherited as one function would be shared by every request
        # and lost by one that redeclares the field: each concrete request gets approve and reject of its own.
        super().__init_subclass__(**kwargs)
        for name, move in zip(("approve", "reject"), _decision_transitions(), strict=True):
            if name not in cls.__dict__:
                setattr(cls, name, move)


# The abstract model's own state field would collect the concrete requests' transitions as well (django-fsm listens
# for every model prepared below the model a field was declared on) and bind them to itself, which a redeclared
# field (the overlay's) then no longer recognises: only the concrete models' fields collect them.
class_prepared.disconnect(FourEyesRequest._meta.get_field("status")._collect_transitions)


def _decider(request: FourEyesRequest, user) -> bool:
    """The transitions' permission: the model's decide_permission (four eyes)."""
    return can(user, request.decide_permission, request)


def _decision_transitions():
    """approve and reject (pending → approved / rejected, the decision time stamped), by the state field's name."""
    status = FourEyesRequest.Status

    @transition(field="status", source=status.PENDING, target=status.APPROVED, permission=_decider)
    def approve(self):
        self.decided_at = timezone.now()

    @transition(field="status", source=status.PENDING, target=status.REJECTED, permission=_decider)
    def reject(self):
        self.decided_at = timezone.now()

    return approve, reject


R = TypeVar("R", bound=FourEyesRequest)


def four_eyes_lock(model: type[R], pk: int, *, approve: bool, by, own_message: str, decided_message: str,
                   errors: dict | None = None) -> R:
    """The request `pk` locked for its decision (inside the caller's transaction.atomic): `by` must hold its
    decide_permission (else `own_message`, 403: the requester, or a role that may not decide) and it must still be
    pending (else `decided_message`, 409 with its state). The caller applies what approval does, then records."""
    request = model.objects.select_for_update().get(pk=pk)
    permission_check(by, request.decide_permission, request, message=own_message, errors=errors)
    if not has_transition_perm(request.approve if approve else request.reject, by):  # may decide: only the state says no
        raise Conflict(decided_message, state=request.status)
    return request


def four_eyes_record(request: R, *, approve: bool, by, comment: str) -> R:
    """The decision on a request from four_eyes_lock: the transition, the decider and the comment, saved. The caller
    writes the audit event (it names the caller's own object and data)."""
    (request.approve if approve else request.reject)()
    request.decided_by = by
    request.comment = (comment or "")[:500]
    request.save()
    return request

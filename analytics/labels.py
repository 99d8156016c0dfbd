"""Names for the codes the analytics tables carry that no model choice names: the scorecard's features (from the
champion spec's labels), for the `label` filter and the tables' cells (loanservice.labels)."""

from __future__ import annotations

from loanservice import labels
from underwriting.expert_scorecard import _FEATURES
from underwriting.features import PROFILE_FIELDS


def register_labels() -> None:
    names = {code: f"{zh} / {en}" for code, zh, en, _unit in PROFILE_FIELDS}
    names.update({f["name"]: f"{f['label']['zh']} / {f['label']['en']}" for f in _FEATURES})
    labels.register("feature", names)

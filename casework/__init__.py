"""The top floor: the lifecycle conductor and its tasks, the case API, the portal and staff pages that span
stages, pre-qualification, the policy what-if, reference and demo data. Nothing below imports it."""

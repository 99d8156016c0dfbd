"""The kernel (ground floor): audit trail, SLA clocks, business calendar, roles and the visibility rule,
notifications, the FSM mixin, errors, storage, text helpers. It imports no stage and nothing above it."""

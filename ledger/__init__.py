"""The general ledger (总账): chart of accounts, balanced journal entries, reversals, period close, trial balance.

It stands just above the kernel and below the stages: contracts and postloan post to it; it knows nothing of
loans. Every entry balances (debits = credits) — checked here and, on Postgres, by the database at commit."""

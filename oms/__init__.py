"""The book of record and the order management system: tieout's base layer.

oms owns reference data (instruments, accounts), the double-entry cash journal, market data,
executions, positions and P&L, and the hash-chained audit trail. It imports nothing from the
other tieout packages: recon, reports, schedules and cli build on it, never the other way round.
Pure functions (values, lots, ledger, audit hashing, bar checks) sit beside the store adapter,
which is the only module here that talks to a database.
"""

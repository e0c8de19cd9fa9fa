"""Reconciliation: venue profiles, validated loaders, the matching engine, breaks and runs.

recon reads the book of record through oms and never writes to it; it owns recon runs, breaks
and quarantined venue rows.
"""

"""Scheduled operations: stored jobs, business-date arguments, run-once locking and alerts.

schedules sits above recon and reports and below cli.
"""

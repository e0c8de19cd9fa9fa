"""Reports: statements, exception reports, confirmations and exports.

Builders turn store queries into frozen report data; templates render that data last.
reports depends on oms only.
"""

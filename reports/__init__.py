"""Reports: account statements, the exception report, trade confirmations and exports.

Every document is data first. An edge function (``reports.sources``) reads plain values from
the store in one read transaction; a pure builder turns them into frozen, slotted dataclasses
(no I/O, no clock: the generation time comes in as a value); ``as_json`` gives the contract's
JSON (decimals as strings, exact); Jinja2 templates (autoescape on, StrictUndefined) render the
same data to self-contained HTML, and WeasyPrint renders that HTML to PDF (``reports.render``).

Money is exact Decimal throughout; only the templates round, for display, to the currency's
minor unit (half-even). reports depends on oms only: it never imports recon, its sibling layer;
the exception report reads recon's tables by name (``reports.recon_tables``).
"""

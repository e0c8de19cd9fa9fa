"""Alembic migrations of the tieout schema, shipped with the package so `tieout init` finds them."""

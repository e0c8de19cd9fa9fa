"""Alembic migrations of the tieout schema, shipped with the package so `tieout init` finds them."""

# the newest revision (a test holds it equal to alembic's head): the schema check of every
# command compares the database's revision with it without importing alembic
HEAD = "0025"

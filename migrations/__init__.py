"""Alembic migrations of the tieout schema, shipped with the package so `tieout init` finds them."""

# the newest revision (a test holds it equal to alembic's head): the schema check of every
# command compares the database's revision with it without importing alembic
HEAD = "0025"


def known(revision: str) -> bool:
    """Whether `revision` is one of this code's (0001 to HEAD): one that is not was made by a
    newer tieout (or by something else), and `tieout init` cannot take it anywhere."""
    return revision.isdigit() and len(revision) == len(HEAD) and "0001" <= revision <= HEAD


def newer(revision: str) -> bool:
    """Whether `revision` reads as one a newer tieout made (a number past HEAD)."""
    return revision.isdigit() and len(revision) == len(HEAD) and revision > HEAD

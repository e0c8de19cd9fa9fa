"""Alembic migrations of the tieout schema, shipped with the package so `tieout init` finds them."""

# the newest revision (a test holds it equal to alembic's head): the schema check of every
# command compares the database's revision with it without importing alembic
HEAD = "0025"


def _numbered(revision: str) -> bool:
    """A revision named as tieout names them: a number of HEAD's width (compared as text)."""
    return revision.isdigit() and len(revision) == len(HEAD)


def known(revision: str) -> bool:
    """Whether `revision` is one of this code's (0001 to HEAD): one that is not was made by a
    newer tieout (or by something else), and `tieout init` cannot take it anywhere."""
    return _numbered(revision) and "0001" <= revision <= HEAD


def newer(revision: str) -> bool:
    """Whether `revision` reads as one a newer tieout made (a number past HEAD)."""
    return _numbered(revision) and revision > HEAD

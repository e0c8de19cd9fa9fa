"""oms.interrupts.caused_by_interrupt: an error raised while an interrupt was handled."""

import sqlalchemy.exc

from oms.interrupts import caused_by_interrupt


def _raised_while_interrupted() -> BaseException:
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:  # psycopg cancels the query; the rollback then fails
            raise sqlalchemy.exc.OperationalError(
                "ROLLBACK", {}, Exception("another command is already in progress")
            ) from None
    except sqlalchemy.exc.OperationalError as exc:
        return exc


def test_an_error_raised_in_handling_an_interrupt_came_of_it() -> None:
    exc = _raised_while_interrupted()
    assert exc.__cause__ is None  # `from None` hides it from the traceback, not from the chain
    assert caused_by_interrupt(exc)
    assert caused_by_interrupt(KeyboardInterrupt())
    assert not caused_by_interrupt(ValueError("x"))
    chained = RuntimeError("second")
    chained.__cause__ = ValueError("first")
    assert not caused_by_interrupt(chained)

"""Alembic environment: runs on the connection tieout passes in (`tieout init`), or on the URL
from TIEOUT_DB / alembic.ini when a developer runs `alembic` by hand."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

import oms.retention_schema  # registers the retention tables on the metadata
import oms.service_schema  # noqa: F401  (registers the service-account tables)
import recon.schema  # noqa: F401  (registers the recon tables on the metadata)
import schedules.schema  # noqa: F401  (registers the schedule tables on the metadata)
from oms.schema import metadata

config = context.config


def _run(connection: object) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = os.environ.get("TIEOUT_DB") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set TIEOUT_DB or sqlalchemy.url")
    engine = create_engine(url)
    with engine.begin() as conn:
        _run(conn)

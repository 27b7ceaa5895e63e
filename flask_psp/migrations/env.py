from alembic import context

from flask_psp.migrations import VERSION_TABLE
from flask_psp.models import metadata

engine = context.config.attributes["engine"]
#: one upgrade at a time per database: workers that all migrate at boot would race to create the tables
ADVISORY_LOCK = 0x7073705F6D6967  # "psp_mig"

with engine.begin() as connection:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({ADVISORY_LOCK})")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
        include_object=lambda obj, name, type_, reflected, compare_to: type_ != "table" or name.startswith("psp_"),
    )
    with context.begin_transaction():
        context.run_migrations()

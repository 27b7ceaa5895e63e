from alembic import context

from flask_psp.migrations import VERSION_TABLE
from flask_psp.models import metadata

engine = context.config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
        include_object=lambda obj, name, type_, reflected, compare_to: type_ != "table" or name.startswith("psp_"),
    )
    with context.begin_transaction():
        context.run_migrations()

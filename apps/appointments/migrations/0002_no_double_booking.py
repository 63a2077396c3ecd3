"""On PostgreSQL, the database itself refuses two active appointments of one host at
overlapping times: the last guard behind the booking transaction's own check."""

from django.db import migrations

CONSTRAINT = "appointment_host_no_overlap"


def add_constraint(apps, schema_editor):  # noqa: ANN001, ANN201 - migration signature
    if schema_editor.connection.vendor != "postgresql":
        return  # SQLite (make run) relies on the booking transaction alone
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    schema_editor.execute(
        f"""
        ALTER TABLE appointments_appointment ADD CONSTRAINT {CONSTRAINT}
        EXCLUDE USING gist (host_id WITH =, tstzrange(start, "end", '[)') WITH &&)
        WHERE (status IN ('requested', 'approved', 'started'))
        """
    )


def drop_constraint(apps, schema_editor):  # noqa: ANN001, ANN201 - migration signature
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"ALTER TABLE appointments_appointment DROP CONSTRAINT IF EXISTS {CONSTRAINT}"
        )


class Migration(migrations.Migration):
    dependencies = [("appointments", "0001_initial")]

    operations = [migrations.RunPython(add_constraint, drop_constraint)]

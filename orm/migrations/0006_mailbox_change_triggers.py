"""Every change of an account's state is announced to the listeners' RCPT caches (resolvers/mailbox_changes.py).

PostgreSQL: triggers NOTIFY `mailbox_changed` with '<account id>:<mailbox number>' (delivered at COMMIT).
SQLite: triggers append the pair to `mailbox_change`, which keeps the newest 10,000 entries.
The state is `active`, `pending_operation` and `merge_target_id`; a deleted account is announced too.
"""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops

_CHANGED = "OLD.{c} IS DISTINCT FROM NEW.{c}"
_STATE_COLUMNS = ("active", "pending_operation", "merge_target_id")

POSTGRES = [
    """CREATE FUNCTION mail_account_announce_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mailbox_changed', OLD.id || ':' || OLD.mailbox_number);
    RETURN NULL;
END
$$""",
    f"""CREATE TRIGGER mail_account_state_changed
AFTER UPDATE OF {", ".join(_STATE_COLUMNS)} ON mail_account FOR EACH ROW
WHEN ({" OR ".join(_CHANGED.format(c=column) for column in _STATE_COLUMNS)})
EXECUTE FUNCTION mail_account_announce_change()""",
    """CREATE TRIGGER mail_account_deleted AFTER DELETE ON mail_account FOR EACH ROW
EXECUTE FUNCTION mail_account_announce_change()""",
]
POSTGRES_REVERSE = [
    "DROP TRIGGER mail_account_deleted ON mail_account",
    "DROP TRIGGER mail_account_state_changed ON mail_account",
    "DROP FUNCTION mail_account_announce_change()",
]

_SQLITE_LOG = """BEGIN
    INSERT INTO mailbox_change (account_id, mailbox_number) VALUES (OLD.id, OLD.mailbox_number);
    DELETE FROM mailbox_change WHERE id <= last_insert_rowid() - 10000;
END"""
SQLITE = [
    """CREATE TABLE mailbox_change (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INT NOT NULL,
    mailbox_number INT NOT NULL
)""",
    f"""CREATE TRIGGER mail_account_state_changed
AFTER UPDATE OF {", ".join(_STATE_COLUMNS)} ON mail_account FOR EACH ROW
WHEN {" OR ".join(f"OLD.{column} IS NOT NEW.{column}" for column in _STATE_COLUMNS)}
{_SQLITE_LOG}""",
    f"""CREATE TRIGGER mail_account_deleted AFTER DELETE ON mail_account FOR EACH ROW
{_SQLITE_LOG}""",
]
SQLITE_REVERSE = [
    "DROP TRIGGER mail_account_deleted",
    "DROP TRIGGER mail_account_state_changed",
    "DROP TABLE mailbox_change",
]


async def _run(schema_editor: Any, statements: dict[str, list[str]]) -> None:
    client = schema_editor.client
    for sql in statements[client.capabilities.dialect]:
        if schema_editor.collect_sql:
            schema_editor.collected_sql.append(sql)
        else:
            # One statement per call: the SQLite schema editor splits at every ";", a trigger body's too.
            await client.execute_query(sql)


async def forward(apps: Any, schema_editor: Any) -> None:
    await _run(schema_editor, {"postgres": POSTGRES, "sqlite": SQLITE})


async def backward(apps: Any, schema_editor: Any) -> None:
    await _run(schema_editor, {"postgres": POSTGRES_REVERSE, "sqlite": SQLITE_REVERSE})


class Migration(migrations.Migration):
    dependencies = [("models", "0005_pending_operation")]

    initial = False

    operations = [ops.RunPython(forward, backward)]

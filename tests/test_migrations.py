"""The migrations in orm/migrations/ build exactly the models in orm/models.py."""

from __future__ import annotations

from tortoise.context import get_current_context
from tortoise.migrations.autodetector import MigrationAutodetector

from orm.config import tortoise_config


async def test_the_models_need_no_new_migration(db: str) -> None:
    """`tortoise makemigrations` would write nothing: a model change without its migration fails here."""
    context = get_current_context()
    assert context is not None
    changes = await MigrationAutodetector(context.apps, tortoise_config(db)["apps"]).changes()
    assert [writer.name for writer in changes] == []

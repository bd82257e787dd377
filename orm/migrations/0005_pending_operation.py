from tortoise import migrations
from tortoise.migrations import operations as ops
from orm.models import PendingOperation
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0004_rate_counter_lockout')]

    initial = False

    operations = [
        ops.AddField(
            model_name='MailAccount',
            name='merge_target',
            field=fields.ForeignKeyField('models.MailAccount', source_field='merge_target_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT),
        ),
        ops.AddField(
            model_name='MailAccount',
            name='operation_done',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='MailAccount',
            name='operation_started_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='MailAccount',
            name='operation_total',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='MailAccount',
            name='pending_operation',
            field=fields.CharEnumField(null=True, description='MERGE: MERGE\nDELETE: DELETE', enum_type=PendingOperation, max_length=8),
        ),
        ops.AddIndex(
            model_name='MailAccount',
            index=Index(fields=['merge_target_id']),
        ),
    ]

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from orm.models import Direction, Scope, SmtpSecurity
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='Tenant',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(unique=True, max_length=100)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'tenant', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A company. Every other row belongs to exactly one tenant.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ApiToken',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('models.Tenant', source_field='tenant_id', db_constraint=True, to_field='id', related_name='tokens', on_delete=OnDelete.CASCADE)),
                ('label', fields.CharField(default='', max_length=100)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('scope', fields.CharEnumField(description='READ: read\nWRITE: write', enum_type=Scope, max_length=8)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('last_used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'api_token', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A bearer token of a tenant. Only the SHA-256 of the token is stored.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='MailAccount',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('models.Tenant', source_field='tenant_id', db_constraint=True, to_field='id', related_name='accounts', on_delete=OnDelete.RESTRICT)),
                ('email', fields.CharField(max_length=320)),
                ('email_normalized', fields.CharField(max_length=320)),
                ('sender_name', fields.CharField(max_length=200)),
                ('active', fields.BooleanField(default=True)),
                ('mailbox_number', fields.IntField(unique=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('spf_report', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('spf_checked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('smtp_host', fields.CharField(null=True, max_length=253)),
                ('smtp_port', fields.IntField(null=True)),
                ('smtp_security', fields.CharEnumField(null=True, description='STARTTLS: STARTTLS\nTLS: TLS\nNONE: NONE', enum_type=SmtpSecurity, max_length=8)),
                ('smtp_username', fields.CharField(null=True, max_length=320)),
                ('smtp_password_encrypted', fields.TextField(null=True, unique=False)),
            ],
            options={'table': 'mail_account', 'app': 'models', 'unique_together': (('tenant', 'email_normalized'),), 'indexes': [Index(fields=['tenant_id', 'id'])], 'pk_attr': 'id', 'table_description': "One of a tenant's own addresses, bound to a platform mailbox number."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Mailbox',
            fields=[
                ('number', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('models.Tenant', source_field='tenant_id', db_constraint=True, to_field='id', related_name='mailboxes', on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('released_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'mailbox', 'app': 'models', 'pk_attr': 'number', 'table_description': 'A platform mailbox number. Rows are never deleted, so a number is never handed out twice.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Message',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('account', fields.ForeignKeyField('models.MailAccount', source_field='account_id', db_constraint=True, to_field='id', related_name='messages', on_delete=OnDelete.RESTRICT)),
                ('direction', fields.CharEnumField(description='INBOUND: INBOUND\nOUTBOUND: OUTBOUND', enum_type=Direction, max_length=8)),
                ('message_id_header', fields.CharField(null=True, max_length=998)),
                ('from_header', fields.TextField(default='', unique=False)),
                ('to_header', fields.TextField(default='', unique=False)),
                ('subject', fields.TextField(default='', unique=False)),
                ('date', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('size', fields.IntField()),
                ('is_bounce', fields.BooleanField(default=False)),
                ('received_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'message', 'app': 'models', 'indexes': [Index(fields=['account_id', 'id']), Index(fields=['account_id', 'message_id_header'])], 'pk_attr': 'id', 'table_description': 'A stored mail of an account: header fields for listings. The raw bytes live in MessageBody.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='MessageBody',
            fields=[
                ('message', fields.OneToOneField('models.Message', source_field='message_id', primary_key=True, db_index=True, db_constraint=True, to_field='id', related_name='body', on_delete=OnDelete.CASCADE)),
                ('content', fields.BinaryField()),
            ],
            options={'table': 'message_body', 'app': 'models', 'pk_attr': 'message_id', 'table_description': 'The raw bytes of a message, kept apart so listings never read them.'},
            bases=['Model'],
        ),
    ]

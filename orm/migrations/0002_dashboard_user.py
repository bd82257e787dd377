from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='DashboardUser',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('models.Tenant', source_field='tenant_id', db_constraint=True, to_field='id', related_name='dashboard_users', on_delete=OnDelete.CASCADE)),
                ('email', fields.CharField(max_length=320)),
                ('email_normalized', fields.CharField(unique=True, max_length=320)),
                ('password_hash', fields.CharField(max_length=200)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('last_login_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('sessions_valid_after', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'dashboard_user', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A person who signs in to the dashboard and acts for its tenant. The password is kept as an argon2 hash.'},
            bases=['Model'],
        ),
        ops.AlterModelOptions(
            name='MessageBody',
            options={'table': 'message_body', 'app': 'models', 'pk_attr': 'message_id', 'table_description': 'The raw bytes of a message, kept apart so listings never read them.'},
        ),
    ]

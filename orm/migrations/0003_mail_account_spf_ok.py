from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0002_dashboard_user')]

    initial = False

    operations = [
        ops.AddField(
            model_name='MailAccount',
            name='spf_ok',
            field=fields.BooleanField(null=True),
        ),
    ]

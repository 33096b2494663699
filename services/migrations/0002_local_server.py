from django.db import migrations


def create_local_server(apps, schema_editor):
    Server = apps.get_model("services", "Server")
    Server.objects.get_or_create(name="local", defaults={"kind": "local", "host": "", "user": ""})


class Migration(migrations.Migration):
    dependencies = [("services", "0001_initial")]

    operations = [migrations.RunPython(create_local_server, migrations.RunPython.noop)]

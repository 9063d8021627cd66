"""Create the four role groups with their streams permissions.

Later apps add their own permissions to these groups in their own migrations.
"""

from django.db import migrations

ROLE_PERMISSIONS = {
    "ops": ["switch_program", "post_announcement", "declare_incident", "view_liveroom"],
    "floor_control": ["post_announcement", "declare_incident", "view_liveroom"],
    "tech_support": ["switch_program", "control_lines", "declare_incident", "view_liveroom"],
    "manager": ["view_audit", "declare_incident", "view_liveroom", "view_controlaction"],
}


def create_roles(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after migrate; make sure they exist now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(*Permission.objects.filter(content_type__app_label="streams", codename__in=codenames))


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("streams", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]

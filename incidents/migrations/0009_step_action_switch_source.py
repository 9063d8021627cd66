from django.db import migrations, models

RENAMED = {"switch_backup": "switch_source:backup", "switch_primary": "switch_source:primary",
           "play_slate": "switch_source:slate"}


def rename(apps, schema_editor, mapping):
    for model in ("RunbookStep", "IncidentStep"):
        Step = apps.get_model("incidents", model)
        for old, new in mapping.items():
            Step.objects.filter(action=old).update(action=new)


class Migration(migrations.Migration):
    """A runbook step's one-click switch names the media operation it runs (switch_source) and its source."""

    dependencies = [("incidents", "0008_incident_fact_trigger")]

    operations = [
        migrations.AlterField(
            model_name='incidentstep',
            name='action',
            field=models.CharField(blank=True, choices=[('', '无(人工确认)'), ('switch_source:backup', '切到备用线路'), ('switch_source:primary', '切回主线路'), ('switch_source:slate', '播放垫片'), ('end_slate', '结束垫片'), ('pin_announcement', '置顶公告'), ('send_host_cue', '发送主播提示'), ('request_keyframe', '请求关键帧'), ('restart_line', '重启推流线路'), ('open_compensation', '发起补偿')], max_length=24, verbose_name='一键动作'),
        ),
        migrations.AlterField(
            model_name='runbookstep',
            name='action',
            field=models.CharField(blank=True, choices=[('', '无(人工确认)'), ('switch_source:backup', '切到备用线路'), ('switch_source:primary', '切回主线路'), ('switch_source:slate', '播放垫片'), ('end_slate', '结束垫片'), ('pin_announcement', '置顶公告'), ('send_host_cue', '发送主播提示'), ('request_keyframe', '请求关键帧'), ('restart_line', '重启推流线路'), ('open_compensation', '发起补偿')], max_length=24, verbose_name='一键动作'),
        ),
        migrations.RunPython(lambda apps, se: rename(apps, se, RENAMED),
                             lambda apps, se: rename(apps, se, {new: old for old, new in RENAMED.items()})),
    ]

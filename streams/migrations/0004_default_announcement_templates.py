"""Starter apology / follow-up templates and canned chat replies (managers edit them later)."""

from django.db import migrations

TEMPLATES = [
    ("稍安勿躁", "apology", "家人们稍安勿躁,技术小哥正在全力抢修,预计{eta}分钟恢复!", 5),
    ("画面卡顿", "apology", "画面有点卡,已切换备用线路,{eta}分钟内恢复正常,福利不变!", 3),
    ("已恢复", "resolved", "直播已恢复,感谢家人们的耐心等待,稍后为大家送上补偿福利!", 0),
]
REPLIES = [
    ("正在抢修", "技术同学正在处理,马上回来,大家别走开~"),
    ("福利不变", "今晚所有福利照常发放,错过的宝宝稍后有补偿!"),
    ("刷新试试", "如果还是卡,可以下拉刷新一下直播间哦"),
]


def seed(apps, schema_editor):
    AnnouncementTemplate = apps.get_model("streams", "AnnouncementTemplate")
    CannedReply = apps.get_model("streams", "CannedReply")
    for name, kind, text, eta in TEMPLATES:
        AnnouncementTemplate.objects.get_or_create(name=name, defaults={"kind": kind, "text": text,
                                                                        "default_eta_minutes": eta})
    for position, (title, text) in enumerate(REPLIES):
        CannedReply.objects.get_or_create(title=title, defaults={"text": text, "position": position})


class Migration(migrations.Migration):
    dependencies = [("streams", "0003_wall_announcements_cues")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]

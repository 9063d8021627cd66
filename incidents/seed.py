"""The seeded incident types and their version-1 SOP runbooks (per role, ordered).

Used by migration 0003 and re-applied after every migrate/flush (idempotent: existing types
keep managers' edits, a type without any runbook gets version 1).
"""

OPS, FLOOR, TECH = "ops", "floor_control", "tech_support"

TYPES = [
    # slug, name, default severity, description, steps: (role, title, action, param)
    ("weak-network", "网络卡顿/弱网", 3, "画面卡顿、码率骤降、丢包抖动升高", [
        (TECH, "查看主/备线路码率、丢包、抖动,判断是推流端还是链路问题", "", ""),
        (TECH, "向主线路请求关键帧,消除花屏", "request_keyframe", "primary"),
        (TECH, "联系现场切换有线网络或降低推流码率", "", ""),
        (OPS, "备用线路健康时一键切到备用线路", "switch_source:backup", ""),
        (OPS, "主线路稳定 2 分钟后切回主线路", "switch_source:primary", ""),
        (FLOOR, "置顶网络波动公告", "pin_announcement", "直播间网络波动,正在为您恢复,请稍候~"),
        (FLOOR, "提示主播放慢节奏、重复讲解当前商品", "send_host_cue", "网络波动中,请放慢节奏,重复讲解当前商品"),
        (FLOOR, "在评论区回复卡顿反馈,安抚观众", "", ""),
    ]),
    ("stream-interruption", "断流", 2, "主线路无画面/无数据,观众端黑屏或转圈", [
        (OPS, "确认自动切换已生效;未生效则一键切到备用线路", "switch_source:backup", ""),
        (OPS, "备用线路也不可用时播放垫片", "switch_source:slate", ""),
        (OPS, "主线路恢复后结束垫片,回到直播画面", "end_slate", ""),
        (OPS, "中断超过 3 分钟,为受影响观众发起补偿", "open_compensation", ""),
        (TECH, "检查推流端(OBS/编码器)与现场网络状态", "", ""),
        (TECH, "重启主线路推流", "restart_line", "primary"),
        (TECH, "记录中断起止时间与原因", "", ""),
        (FLOOR, "置顶断流公告", "pin_announcement", "直播信号中断,技术正在抢修,马上回来!"),
        (FLOOR, "在评论区安抚观众,告知稍后有补偿", "", ""),
    ]),
    ("device-failure", "设备故障", 3, "摄像头、麦克风、灯光等现场设备故障", [
        (TECH, "判断故障设备(摄像头/麦克风/灯光),指导现场换上备用设备", "", ""),
        (TECH, "设备恢复后请求关键帧", "request_keyframe", "primary"),
        (TECH, "记录设备型号与故障现象,报修", "", ""),
        (OPS, "画面或声音不可用时播放垫片", "switch_source:slate", ""),
        (OPS, "设备恢复后结束垫片", "end_slate", ""),
        (FLOOR, "递上备用麦克风/补光灯,协助主播调整", "", ""),
        (FLOOR, "提示主播口播说明情况", "send_host_cue", "设备调整中,请口播说明并继续讲解"),
        (FLOOR, "置顶设备调整公告", "pin_announcement", "设备调整中,稍后继续为您讲解,感谢耐心等待"),
    ]),
    ("host-emergency", "主播突发状况", 2, "主播身体不适、临时离场等突发状况", [
        (OPS, "播放预录商品介绍视频垫片", "switch_source:slate", ""),
        (OPS, "替补主播就位后结束垫片", "end_slate", ""),
        (FLOOR, "确认主播状况,必要时拨打急救电话", "", ""),
        (FLOOR, "呼叫替补主播到场", "", ""),
        (FLOOR, "置顶致歉公告", "pin_announcement", "主播临时有事,精彩马上继续,感谢大家耐心等待!"),
        (TECH, "确认替补机位与麦克风可用", "", ""),
        (TECH, "检查垫片输出与音频是否正常", "", ""),
    ]),
    ("content-violation", "内容违规", 1, "话术、商品展示或画面涉嫌违规", [
        (OPS, "立即切到垫片", "switch_source:slate", ""),
        (OPS, "通知合规负责人,等待处理意见", "", ""),
        (OPS, "合规确认整改后结束垫片", "end_slate", ""),
        (FLOOR, "提示主播立即停止当前话术/展示", "send_host_cue", "请立即停止当前话术/展示,等待合规确认"),
        (FLOOR, "置顶调整公告", "pin_announcement", "直播间调整中,马上回来"),
        (TECH, "保存录像片段引用(直播间、线路、起止时间点)并提交合规", "", ""),
        (TECH, "导出该时段的操作记录备查", "", ""),
    ]),
    ("platform-outage", "平台故障", 1, "平台、CDN 或第三方服务故障,多个直播间受影响", [
        (TECH, "确认故障范围(本平台/CDN/第三方)并联系平台值班", "", ""),
        (TECH, "持续监测恢复情况,每 5 分钟同步一次", "", ""),
        (OPS, "评估是否暂停直播,必要时播放垫片", "switch_source:slate", ""),
        (OPS, "恢复后核对各直播间节目源", "end_slate", ""),
        (OPS, "为受影响观众发起补偿", "open_compensation", ""),
        (FLOOR, "置顶平台故障公告", "pin_announcement", "平台服务波动,恢复后将第一时间通知大家"),
        (FLOOR, "通过社群/私域渠道同步进展", "", ""),
    ]),
    ("av-desync", "音画不同步", 3, "声音与口型/画面明显错位", [
        (TECH, "检查推流端音频延迟(音视频同步偏移)设置", "", ""),
        (TECH, "重启主线路推流,重新同步", "restart_line", "primary"),
        (OPS, "备用线路同步正常时切到备用线路", "switch_source:backup", ""),
        (FLOOR, "提示主播暂停口播,等待修复", "send_host_cue", "声音和画面不同步,请暂停口播,稍等片刻"),
        (FLOOR, "置顶修复公告", "pin_announcement", "声音与画面暂时不同步,正在修复中"),
    ]),
    ("other", "其他", 4, "其他影响直播的情况", [
        (OPS, "评估影响范围并确定事故级别", "", ""),
        (OPS, "必要时播放垫片", "switch_source:slate", ""),
        (FLOOR, "视情况置顶说明公告", "pin_announcement", "直播间临时调整,请稍候"),
        (TECH, "排查并记录原因", "", ""),
    ]),
]


def seed_types(models=None):
    """Create missing types and give any type without a runbook its version 1."""
    if models is None:
        from .models import IncidentType, Runbook, RunbookStep
    else:
        IncidentType, Runbook, RunbookStep = models
    for slug, name, severity, description, steps in TYPES:
        itype, _ = IncidentType.objects.get_or_create(
            slug=slug, defaults={"name": name, "default_severity": severity, "description": description}
        )
        if Runbook.objects.filter(incident_type=itype).exists():
            continue
        runbook = Runbook.objects.create(incident_type=itype, version=1, summary="初始版本")
        positions = {}
        rows = []
        for role, title, action, param in steps:
            positions[role] = positions.get(role, 0) + 1
            rows.append(RunbookStep(runbook=runbook, role=role, position=positions[role], title=title,
                                    action=action, action_param=param))
        RunbookStep.objects.bulk_create(rows)


def seed_after_migrate(**kwargs):
    """post_migrate receiver: test-database flushes wipe data-migration rows; put them back."""
    seed_types()

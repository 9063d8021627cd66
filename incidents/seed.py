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
    # Migration 0003 runs this on models from before the English fields existed.
    has_english = any(f.name == "name_en" for f in IncidentType._meta.get_fields())
    for slug, name, severity, description, steps in TYPES:
        defaults = {"name": name, "default_severity": severity, "description": description}
        if has_english:
            defaults.update(name_en=english(name), description_en=english(description))
        itype, _ = IncidentType.objects.get_or_create(slug=slug, defaults=defaults)
        if Runbook.objects.filter(incident_type=itype).exists():
            continue
        runbook = Runbook.objects.create(incident_type=itype, version=1, summary="初始版本")  # shown via EN
        positions = {}
        rows = []
        for role, title, action, param in steps:
            positions[role] = positions.get(role, 0) + 1
            row = RunbookStep(runbook=runbook, role=role, position=positions[role], title=title,
                              action=action, action_param=param)
            if has_english:
                row.title_en = english(title)
            rows.append(row)
        RunbookStep.objects.bulk_create(rows)


def seed_after_migrate(**kwargs):
    """post_migrate receiver: test-database flushes wipe data-migration rows; put them back."""
    seed_types()


# English texts of the seeded types and steps (by their Chinese text): kept in the *_en fields so
# that an English-speaking reader sees the SOP in English; managers' own edits keep what they typed.
EN = {
    # types
    "网络卡顿/弱网": "Lagging / weak network",
    "画面卡顿、码率骤降、丢包抖动升高": "Picture stutters, bitrate drops, loss and jitter rise",
    "断流": "Stream interruption",
    "主线路无画面/无数据,观众端黑屏或转圈": "No picture or data on the primary line; viewers see black or a spinner",
    "设备故障": "Device failure",
    "摄像头、麦克风、灯光等现场设备故障": "Camera, microphone, lighting or other studio equipment failed",
    "主播突发状况": "Host emergency",
    "主播身体不适、临时离场等突发状况": "The host is unwell, has to leave, or another emergency",
    "内容违规": "Content violation",
    "话术、商品展示或画面涉嫌违规": "Wording, product display or picture may break platform rules",
    "平台故障": "Platform outage",
    "平台、CDN 或第三方服务故障,多个直播间受影响": "Platform, CDN or third-party outage affecting several rooms",
    "音画不同步": "Audio/video out of sync",
    "声音与口型/画面明显错位": "Sound is visibly out of step with the lips or picture",
    "其他": "Other",
    "其他影响直播的情况": "Anything else affecting the show",
    # steps
    "查看主/备线路码率、丢包、抖动,判断是推流端还是链路问题":
        "Check bitrate, loss and jitter of the primary and backup lines: encoder or network?",
    "向主线路请求关键帧,消除花屏": "Request a keyframe on the primary line to clear artefacts",
    "联系现场切换有线网络或降低推流码率": "Ask the studio to switch to wired network or lower the encoder bitrate",
    "备用线路健康时一键切到备用线路": "If the backup line is healthy, switch to it",
    "主线路稳定 2 分钟后切回主线路": "Switch back to the primary line after it has been stable for 2 minutes",
    "置顶网络波动公告": "Pin the network-issue announcement",
    "提示主播放慢节奏、重复讲解当前商品": "Cue the host to slow down and repeat the current product",
    "在评论区回复卡顿反馈,安抚观众": "Answer lag complaints in the comments and reassure viewers",
    "确认自动切换已生效;未生效则一键切到备用线路": "Check the automatic failover worked; if not, switch to the backup line",
    "备用线路也不可用时播放垫片": "If the backup line is down too, play the slate",
    "主线路恢复后结束垫片,回到直播画面": "When the primary line is back, end the slate and return to the live picture",
    "中断超过 3 分钟,为受影响观众发起补偿": "Interrupted for more than 3 minutes: start compensation for affected viewers",
    "检查推流端(OBS/编码器)与现场网络状态": "Check the encoder (OBS) and the studio network",
    "重启主线路推流": "Restart the primary line's stream",
    "记录中断起止时间与原因": "Note when the interruption started and ended, and why",
    "置顶断流公告": "Pin the interruption announcement",
    "在评论区安抚观众,告知稍后有补偿": "Reassure viewers in the comments and tell them compensation is coming",
    "判断故障设备(摄像头/麦克风/灯光),指导现场换上备用设备":
        "Find the failed device (camera, microphone, light) and have the studio swap in a spare",
    "设备恢复后请求关键帧": "Request a keyframe once the device is back",
    "记录设备型号与故障现象,报修": "Note the device model and symptoms and report it for repair",
    "画面或声音不可用时播放垫片": "If picture or sound is unusable, play the slate",
    "设备恢复后结束垫片": "End the slate once the device is back",
    "递上备用麦克风/补光灯,协助主播调整": "Hand over the spare microphone or fill light and help the host",
    "提示主播口播说明情况": "Cue the host to explain the situation on air",
    "置顶设备调整公告": "Pin the equipment-adjustment announcement",
    "播放预录商品介绍视频垫片": "Play the pre-recorded product video slate",
    "替补主播就位后结束垫片": "End the slate once the stand-in host is ready",
    "确认主播状况,必要时拨打急救电话": "Check on the host; call emergency services if needed",
    "呼叫替补主播到场": "Call the stand-in host",
    "置顶致歉公告": "Pin the apology announcement",
    "确认替补机位与麦克风可用": "Check the stand-in camera position and microphone work",
    "检查垫片输出与音频是否正常": "Check the slate output and its audio",
    "立即切到垫片": "Switch to the slate at once",
    "通知合规负责人,等待处理意见": "Tell the compliance lead and wait for their decision",
    "合规确认整改后结束垫片": "End the slate once compliance has approved the fix",
    "提示主播立即停止当前话术/展示": "Cue the host to stop the current wording or display at once",
    "置顶调整公告": "Pin the adjustment announcement",
    "保存录像片段引用(直播间、线路、起止时间点)并提交合规":
        "Save a reference to the recording (room, line, start and end) and send it to compliance",
    "导出该时段的操作记录备查": "Export the action log of that period for the record",
    "确认故障范围(本平台/CDN/第三方)并联系平台值班": "Find the scope (platform, CDN, third party) and call the platform's duty desk",
    "持续监测恢复情况,每 5 分钟同步一次": "Keep watching the recovery and post an update every 5 minutes",
    "评估是否暂停直播,必要时播放垫片": "Decide whether to pause the show; play the slate if needed",
    "恢复后核对各直播间节目源": "After recovery, check every room's programme source",
    "为受影响观众发起补偿": "Start compensation for affected viewers",
    "置顶平台故障公告": "Pin the platform-outage announcement",
    "通过社群/私域渠道同步进展": "Post updates in the community and private channels",
    "检查推流端音频延迟(音视频同步偏移)设置": "Check the encoder's audio delay (A/V sync offset) setting",
    "重启主线路推流,重新同步": "Restart the primary line's stream to resync",
    "备用线路同步正常时切到备用线路": "If the backup line is in sync, switch to it",
    "提示主播暂停口播,等待修复": "Cue the host to pause talking until it is fixed",
    "置顶修复公告": "Pin the repair announcement",
    "评估影响范围并确定事故级别": "Assess the impact and set the severity",
    "必要时播放垫片": "Play the slate if needed",
    "视情况置顶说明公告": "Pin an explanatory announcement if appropriate",
    "排查并记录原因": "Find and note the cause",
    "初始版本": "Initial version",
}


def english(zh):
    return EN.get(zh, "")


def backfill_english(IncidentType, RunbookStep, IncidentStep):
    """Fill the *_en fields of seeded rows whose Chinese text is still the seeded one."""
    for itype in IncidentType.objects.filter(name_en=""):
        itype.name_en, itype.description_en = english(itype.name), english(itype.description)
        itype.save(update_fields=["name_en", "description_en"])
    for model in (RunbookStep, IncidentStep):
        for zh, en in EN.items():
            model.objects.filter(title=zh, title_en="").update(title_en=en)

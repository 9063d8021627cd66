"""The audit's action codes and non-person actors as people read them (audit page, CSV, room history).

Codes of every app are listed here as plain strings (no imports): the audit belongs to streams.
"""

from django.utils.translation import gettext_lazy as _

ACTION_LABELS = {
    "switch_source": _("切换节目源"),
    "end_slate": _("结束垫片"),
    "failover_hold": _("自动切换已暂停(防抖)"),
    "pin_announcement": _("置顶公告"),
    "unpin_announcement": _("取消置顶公告"),
    "send_host_cue": _("发送主播提示"),
    "ack_host_cue": _("主播确认提示"),
    "post_chat_reply": _("回复观众评论"),
    "request_keyframe": _("请求关键帧"),
    "restart_line": _("重启推流线路"),
    "publisher_connected": _("推流端已连接"),
    "publisher_replaced": _("推流端被替换"),
    "publisher_left": _("推流端已断开"),
    "set_room_status": _("直播间状态变更"),
    "acknowledge_alert": _("确认告警"),
    "acknowledge_room_alerts": _("确认直播间全部告警"),
    "inject_demo_fault": _("模拟故障"),
    "push_destination_add": _("添加推流目的地"),
    "push_destination_update": _("修改推流目的地"),
    "push_destination_delete": _("删除推流目的地"),
    "open_incident": _("创建事故"),
    "incident_transition": _("事故状态变更"),
    "incident_complete_step": _("完成预案步骤"),
    "incident_note": _("添加事故备注"),
    "incident_pin_entry": _("置顶时间线条目"),
    "incident_unpin_entry": _("取消置顶时间线条目"),
    "incident_update": _("修改级别/负责人"),
    "incident_update_case": _("修改案例记录"),
    "incident_correct_case": _("更正案例记录"),
    "incident_correct_milestone": _("修正里程碑时间"),
    "incident_save_review": _("保存复盘"),
    "incident_type_edit": _("编辑事故类型"),
    "runbook_publish": _("发布预案版本"),
    "create_campaign": _("创建补偿活动"),
    "approve_campaign": _("审批补偿活动"),
    "issue_campaign": _("开始发放补偿"),
    "complete_campaign": _("补偿发放完成"),
    "fail_campaign": _("补偿发放失败"),
    "cancel_campaign": _("取消补偿活动"),
    "revoke_campaign": _("撤销未核销的券"),
    "draw_campaign": _("开奖"),
    "import_audience": _("导入观众名单"),
}

ACTOR_LABELS = {"auto": _("自动"), "system": _("系统"), "mediaworker": _("媒体处理进程"), "host": _("主播")}


def action_label(code):
    return ACTION_LABELS.get(code) or code.replace("_", " ")


def actor_label(code):
    return ACTOR_LABELS.get(code, code)

# Reasons that are codes (an incident's source, the status a transition moved to): by their label.
REASON_LABELS = {
    "manual": _("人工申报"),
    "auto_failover": _("自动切换"),
    "line_down": _("线路中断超时"),
    "alert": _("告警转事故"),
    "drill": _("演练"),
    "acknowledged": _("已响应"),
    "mitigated": _("已缓解"),
    "resolved": _("已解决"),
    "reviewed": _("已复盘"),
    "cancelled": _("已取消"),
}

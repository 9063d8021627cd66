from django import forms
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from controlroom.roles import CAPABILITIES
from streams.models import LiveRoom

from .models import MILESTONES, Incident, IncidentType, Severity, StepAction, StepRole


class DeclareIncidentForm(forms.Form):
    room = forms.ModelChoiceField(LiveRoom.objects.all(), label=_("直播间"), to_field_name="slug",
                                  empty_label=_("请选择直播间"))
    incident_type = forms.ModelChoiceField(IncidentType.objects.all(), label=_("类型"), to_field_name="slug",
                                           empty_label=_("请选择事故类型"))
    severity = forms.TypedChoiceField(label=_("级别"), choices=[("", _("按类型默认"))] + list(Severity.choices),
                                      coerce=int, required=False, empty_value=None)
    title = forms.CharField(label=_("标题"), max_length=200, required=False,
                            widget=forms.TextInput(attrs={"placeholder": _("留空则用「直播间 · 类型」")}))
    is_drill = forms.BooleanField(label=_("演练"), required=False)


class MilestoneCorrectionForm(forms.Form):
    milestone = forms.ChoiceField(label=_("里程碑"), choices=[
        (m, Incident._meta.get_field(m).verbose_name) for m in MILESTONES])
    value = forms.DateTimeField(label=_("修正为"), input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S",
                                                                 "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"],
                                widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": 1}))
    reason = forms.CharField(label=_("原因"), max_length=200)


class IncidentTypeForm(forms.Form):
    name = forms.CharField(label=_("名称"), max_length=60)
    default_severity = forms.TypedChoiceField(label=_("默认级别"), choices=Severity.choices, coerce=int)
    description = forms.CharField(label=_("说明"), max_length=300, required=False)
    name_en = forms.CharField(label=_("英文名称"), max_length=60, required=False)
    description_en = forms.CharField(label=_("英文说明"), max_length=300, required=False)


class RunbookStepForm(forms.Form):
    role = forms.ChoiceField(label=_("角色"), choices=StepRole.choices)
    title = forms.CharField(label=_("步骤"), max_length=200, required=False)
    instructions = forms.CharField(label=_("说明"), required=False, widget=forms.TextInput)
    title_en = forms.CharField(label=_("英文步骤"), max_length=200, required=False)
    action = forms.ChoiceField(label=_("一键动作"), choices=StepAction.choices, required=False)
    action_param = forms.CharField(
        label=_("动作参数"), max_length=300, required=False,
        help_text=_("公告/提词文字,或 template:公告模板名;关键帧/重启线路填 primary 或 backup"),
        widget=forms.TextInput(attrs={"placeholder": _("公告/提词文字,或 template:模板名")}))

    def clean(self):
        data = super().clean()
        capability = StepAction(data["action"]).capability if data.get("action") else None
        if capability and data.get("role") and data["role"] not in CAPABILITIES[capability]:
            self.add_error("action", _("该角色无权执行这个一键动作,请换一个角色或动作。"))
        if data.get("action") in ("request_keyframe", "restart_line") and data.get("action_param") not in (
                "", "primary", "backup"):
            self.add_error("action_param", _("关键帧/重启线路的参数只能是 primary 或 backup。"))
        if data.get("action") in ("pin_announcement", "send_host_cue") and data.get("title") and \
                not (data.get("action_param") or "").strip():
            self.add_error("action_param", _("置顶公告/主播提示需要填写文字或模板。"))
        return data


RunbookStepFormSet = forms.formset_factory(RunbookStepForm, extra=3, can_delete=True)


class ReviewForm(forms.Form):
    root_cause = forms.CharField(label=_("根本原因"), widget=forms.Textarea(attrs={"rows": 3}), required=False)
    went_well = forms.CharField(label=_("做得好的"), widget=forms.Textarea(attrs={"rows": 3}), required=False)
    to_improve = forms.CharField(label=_("待改进"), widget=forms.Textarea(attrs={"rows": 3}), required=False)


class ActionItemForm(forms.Form):
    text = forms.CharField(label=_("改进项"), max_length=300, required=False)
    owner = forms.ModelChoiceField(get_user_model().objects.filter(is_active=True).order_by("username"),
                                   label=_("负责人"), required=False, empty_label=_("请选择负责人"))
    due_date = forms.DateField(label=_("截止日期"), required=False, widget=forms.DateInput(attrs={"type": "date"}))


ActionItemFormSet = forms.formset_factory(ActionItemForm, extra=2)

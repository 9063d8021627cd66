from django import forms
from django.utils.translation import gettext_lazy as _

from .models import AnnouncementTemplate, CannedReply, ControlAction, LiveRoom


class AnnouncementTemplateForm(forms.ModelForm):
    class Meta:
        model = AnnouncementTemplate
        fields = ["name", "kind", "text", "default_eta_minutes", "is_active"]


class CannedReplyForm(forms.ModelForm):
    class Meta:
        model = CannedReply
        fields = ["title", "text", "position", "is_active"]


class AuditFilterForm(forms.Form):
    room = forms.ModelChoiceField(LiveRoom.objects.all(), required=False, label=_("直播间"))
    user = forms.CharField(required=False, label=_("操作人"))
    action = forms.CharField(required=False, label=_("动作"))
    outcome = forms.ChoiceField(choices=[("", "—")] + list(ControlAction.Outcome.choices), required=False,
                                label=_("结果"))
    since = forms.DateTimeField(required=False, label=_("开始时间"),
                                widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    until = forms.DateTimeField(required=False, label=_("结束时间"),
                                widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))

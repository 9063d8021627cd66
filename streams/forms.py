from django import forms
from django.utils.translation import gettext_lazy as _

from .action_labels import ACTION_LABELS
from .models import AnnouncementTemplate, CannedReply, ControlAction, LiveRoom, PushDestination, validate_rtmp_url


class AnnouncementTemplateForm(forms.ModelForm):
    class Meta:
        model = AnnouncementTemplate
        fields = ["name", "name_en", "kind", "text", "text_en", "default_eta_minutes", "is_active"]


class CannedReplyForm(forms.ModelForm):
    class Meta:
        model = CannedReply
        fields = ["title", "title_en", "text", "text_en", "position", "is_active"]


class AuditFilterForm(forms.Form):
    # Rows older than RETENTION_AUDIT_HOT_DAYS live in the archive table (streams/retention.py).
    period = forms.ChoiceField(choices=[("", _("近期记录")), ("archive", _("已归档记录"))], required=False,
                               label=_("范围"))
    room = forms.ModelChoiceField(LiveRoom.objects.all(), required=False, label=_("直播间"),
                                  empty_label=_("全部直播间"))
    user = forms.CharField(required=False, label=_("操作人"),
                           widget=forms.TextInput(attrs={"placeholder": _("用户名")}))
    action = forms.ChoiceField(required=False, label=_("动作"),
                               choices=[("", _("全部动作"))] + sorted(ACTION_LABELS.items(), key=lambda kv: str(kv[1])))
    outcome = forms.ChoiceField(choices=[("", _("全部结果"))] + list(ControlAction.Outcome.choices), required=False,
                                label=_("结果"))
    since = forms.DateTimeField(required=False, label=_("开始时间"),
                                widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    until = forms.DateTimeField(required=False, label=_("结束时间"),
                                widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))


class PushDestinationForm(forms.Form):
    """Add or edit a push destination. The saved stream key is never rendered back: left blank on edit,
    the saved key is kept."""

    platform = forms.ChoiceField(choices=PushDestination.Platform.choices, label=_("平台"))
    url = forms.CharField(max_length=300, label=_("推流地址"), validators=[validate_rtmp_url],
                          widget=forms.TextInput(attrs={"placeholder": "rtmp://push.example.com/live"}))
    stream_key = forms.CharField(max_length=300, required=False, label=_("推流密钥"),
                                 widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}))
    enabled = forms.BooleanField(required=False, initial=True, label=_("启用"))

    def __init__(self, *args, adding=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.adding = adding
        if not adding:
            self.fields["stream_key"].widget.attrs["placeholder"] = _("留空则保留已保存的密钥")

    def clean_stream_key(self):
        key = self.cleaned_data["stream_key"].strip()
        if self.adding and not key:
            raise forms.ValidationError(_("请填写推流密钥"))
        if any(c.isspace() for c in key):
            raise forms.ValidationError(_("推流密钥不能包含空格"))
        return key

import logging
import re
import uuid

from django.conf import settings
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import Http404, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.utils import translation
from django.utils.translation import gettext as _

logger = logging.getLogger("controlroom.errors")


class ChosenLanguageMiddleware:
    """Simplified Chinese unless the user picked another language in the header.

    Unlike LocaleMiddleware, the browser's Accept-Language is ignored: control-room machines
    often run English browsers while the team works in Chinese.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            language = translation.get_supported_language_variant(request.COOKIES[settings.LANGUAGE_COOKIE_NAME])
        except (KeyError, LookupError):
            language = settings.LANGUAGE_CODE
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()
        response = self.get_response(request)
        response.headers.setdefault("Content-Language", request.LANGUAGE_CODE)
        return response


# Control characters other than tab, newline and carriage return have no place in a form or a query
# string; NUL in particular reaches PostgreSQL as "A string literal cannot contain NUL" (a 500).
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def has_control_characters(value):
    return isinstance(value, str) and CONTROL_CHARACTERS.search(value) is not None


class RefuseControlCharactersMiddleware:
    """Refuse a request whose query string or form fields carry control characters: a clear 400 before
    any view runs (JSON APIs and sockets check their own input)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        fields = list(request.GET.lists())
        if request.method == "POST" and request.content_type in ("application/x-www-form-urlencoded",
                                                                 "multipart/form-data"):
            fields += list(request.POST.lists())
        for name, values in fields:
            if has_control_characters(name) or any(has_control_characters(v) for v in values):
                return HttpResponseBadRequest(_("输入包含不允许的控制字符(如 NUL),请删除后重试。"),
                                              content_type="text/plain; charset=utf-8")
        return self.get_response(request)


class ErrorIdMiddleware:
    """An unexpected error is logged with a short id; the user sees only the id to quote, never the
    exception text (which can reveal code, SQL or data)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if settings.DEBUG or isinstance(exception, (Http404, PermissionDenied, SuspiciousOperation)):
            return None
        error_id = error_reference()
        logger.error("internal error %s on %s %s", error_id, request.method, request.path, exc_info=exception)
        message = _("服务器内部错误,请稍后重试;如需报告,请提供错误编号 %(id)s。") % {"id": error_id}
        if request.path.startswith("/compensation/api/") or "application/json" in request.headers.get("Accept", ""):
            return JsonResponse({"error": "internal", "error_id": error_id, "message": message}, status=500,
                                json_dumps_params={"ensure_ascii": False})
        return HttpResponse(message, status=500, content_type="text/plain; charset=utf-8")


def error_reference():
    """A short id that ties what a user reports to the log line with the traceback."""
    return uuid.uuid4().hex[:10]


# Routes anyone may open: the viewer page and its fragments, viewers' presses, draw verification, the shop API,
# external viewer apps' feed, WHIP/WHEP signalling.
PUBLIC_PATH = re.compile(r"^/(live/|whip/|whep/|api/|compensation/(draws/|live/|api/|\d+/(join|claim)$))")
# Of those, the ones machines call: they get JSON errors.
PUBLIC_API_PATH = re.compile(r"^/(whip/|whep/|api/|compensation/(api/|\d+/(join|claim)$))")


class PublicErrorPagesMiddleware:
    """Viewers never see Django's debug pages: a 404 or 500 on a public route (and a link to nowhere, for
    anyone not logged in) gets the production page in the users' words, JSON on API routes, even with
    DEBUG on (the demo runs with it). Staff keep the debug pages on control-room routes."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code == 404 and getattr(request, "resolver_match", None) is None and (
                PUBLIC_PATH.match(request.path) or not _logged_in(request)):
            return public_error_response(request, 404)
        return response

    def process_exception(self, request, exception):
        if not PUBLIC_PATH.match(request.path):
            return None
        if isinstance(exception, Http404):
            return public_error_response(request, 404)
        if isinstance(exception, (PermissionDenied, SuspiciousOperation)):
            return None
        error_id = error_reference()
        logger.error("internal error %s on %s %s", error_id, request.method, request.path, exc_info=exception)
        return public_error_response(request, 500, error_id=error_id)


def _logged_in(request):
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated)


def public_error_response(request, status, error_id=""):
    from django.shortcuts import render

    if PUBLIC_API_PATH.match(request.path) or "application/json" in request.headers.get("Accept", ""):
        if status == 404:
            body = {"error": "not_found", "message": _("地址不存在")}
        else:
            body = {"error": "internal", "error_id": error_id,
                    "message": _("服务器内部错误,请稍后重试;如需报告,请提供错误编号 %(id)s。") % {"id": error_id}}
        return JsonResponse(body, status=status, json_dumps_params={"ensure_ascii": False})
    return render(request, f"{status}.html", {"error_id": error_id}, status=status)

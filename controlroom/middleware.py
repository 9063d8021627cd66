from django.conf import settings
from django.utils import translation


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

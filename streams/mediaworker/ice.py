"""The media engine's ICE configuration from the Django settings (streams.media.ice takes it as arguments)."""

from django.conf import settings

from ..media import ice


def configure_from_settings():
    ice.configure(settings.MEDIA_ICE_SERVERS, settings.MEDIA_HOST_ADDRESSES)

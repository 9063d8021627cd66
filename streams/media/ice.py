"""Explicit ICE configuration for every aiortc peer connection the worker creates.

aiortc falls back to a public STUN server when no ICE servers are given, and aioice never
gathers loopback addresses by itself: both are fixed here, from what the caller passes to configure()
(streams.mediaworker.ice reads the Django settings).
"""

import ipaddress

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection

_host_addresses = ["127.0.0.1"]


def _configured_host_addresses(use_ipv4, use_ipv6):
    out = []
    for addr in _host_addresses:
        version = ipaddress.ip_address(addr).version
        if (version == 4 and use_ipv4) or (version == 6 and use_ipv6):
            out.append(addr)
    return out


def configure(ice_servers=None, host_addresses=None):
    """Use exactly these host candidate addresses for every peer in this process."""
    global _ice_servers
    if host_addresses:
        _host_addresses[:] = list(host_addresses)
    _ice_servers = list(ice_servers or [])
    # aioice has no option for the host addresses: replace its lookup (process-wide).
    aioice.ice.get_host_addresses = _configured_host_addresses


_ice_servers = []


def rtc_configuration():
    return RTCConfiguration(iceServers=[RTCIceServer(urls=url) for url in _ice_servers])


def new_peer_connection():
    if aioice.ice.get_host_addresses is not _configured_host_addresses:
        aioice.ice.get_host_addresses = _configured_host_addresses  # loopback/configured hosts only
    return RTCPeerConnection(configuration=rtc_configuration())


def answer_as_dtls_server(pc):
    """Take the DTLS server role (a=setup:passive) in our answers.

    As a DTLS client aiortc offers only ECDHE-ECDSA cipher suites, so a peer with an RSA certificate
    (e.g. Chromium with RTCPeerConnection.generateCertificate RSASSA-PKCS1-v1_5) cannot complete the
    handshake (aiortc#1434). As the server our ECDSA key decides the suite and any client certificate
    type works. Call after setRemoteDescription(offer), before createAnswer.
    """
    for transceiver in pc.getTransceivers():
        transport = transceiver.receiver.transport
        if transport is not None and transport._role == "auto":
            transport._set_role("server")

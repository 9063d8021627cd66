"""The aiortc media worker: WHIP ingest, program switcher, encode-once WHEP fan-out, failover, health.

Nothing in this package imports Django (a test checks): streams.mediaworker is its Django side
(bridge: models/services; client: how the web process reaches the engine; worker: the process).
"""

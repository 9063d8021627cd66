"""The aiortc media worker: WHIP ingest, program switcher, encode-once WHEP fan-out, failover, health.

engine.py knows nothing about Django; bridge.py is the only module that touches models/services;
client.py is how the web process reaches the engine (in-process or over the channel layer).
"""

"""The media engine's Django side: hooks that write audit rows and alerts (bridge), the
`mediaworker` process (worker) and how the web process reaches the engine (client).
streams.media itself imports no Django."""

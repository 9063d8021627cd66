"""The web process exits promptly on SIGTERM even with requests in flight.

A sync middleware in front of an async view (WHIP/WHEP) parks the request's worker thread in
async_to_sync, waiting for the view's coroutine on Daphne's loop. Once Daphne stops, that loop never
runs again: the thread can never finish, and the interpreter waits for it at exit forever (seen: > 30 s,
killed). Daphne itself also waits, before stopping, for application instances it has cancelled, and a
cancelled request parked that way only finishes when its view does (up to the worker's 10 s reply timeout).
So from the moment the server starts to stop, the process gets a fixed budget, then ends: the requests
still in flight then are lost either way, and the supervisor (or another worker) is not kept waiting.
"""

import logging
import os
import sys
import threading

logger = logging.getLogger(__name__)


def exit_promptly_after_server_stops(budget_s=4.0):
    """Under Daphne (Twisted): once shutdown begins (SIGTERM), exit within `budget_s` whatever still runs."""
    if "twisted.internet.reactor" not in sys.modules:
        return  # not served by Daphne (tests, management commands)
    from twisted.internet import reactor

    def on_shutdown():
        def force_exit():
            stuck = [t.name for t in threading.enumerate() if t.is_alive() and not t.daemon
                     and t is not threading.main_thread()]
            logger.warning("still stopping %.0f s after SIGTERM (%s thread(s) waiting on requests): exiting",
                           budget_s, len(stuck))
            logging.shutdown()
            os._exit(0)

        timer = threading.Timer(budget_s, force_exit)
        timer.daemon = True
        timer.start()

    reactor.addSystemEventTrigger("before", "shutdown", on_shutdown)

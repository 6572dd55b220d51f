"""The hub with its web app on a free port, run on an event loop of its own thread, for the browser tests.

The test drives Chromium (Playwright's sync API) from the test's thread while the hub serves from its own
loop, as `parkcard up --web-port` serves it; `call(coro)` runs a coroutine on the hub's loop (a service as
the local admin, a registration) and returns its result.
"""

import asyncio
import threading

from parkcard.api.server import ApiServer
from parkcard_devkit.testing import start_hub

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
CALL_TIMEOUT_S = 30


class HubThread:
    """A started Hub (start_hub: the park merchant, an ice-cream merchant, a desk) serving its web app."""

    def __init__(self, db_path, broker, time_zone="UTC"):
        self.db_path = db_path
        self.broker = broker
        self.api = ApiServer(port=0, time_zone=time_zone)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="hub-loop", daemon=True)
        self.hub = None

    def start(self):
        """Start the loop, then the hub on it; return self."""
        self.thread.start()
        self.hub = self.call(start_hub(self.db_path, self.broker.host, self.broker.port, api=self.api))
        return self

    @property
    def url(self):
        """The web app's address."""
        return self.api.web_url.rstrip("/")

    def call(self, coro):
        """Run coro on the hub's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(CALL_TIMEOUT_S)

    def stop(self):
        """Stop the hub, then its loop."""
        try:
            if self.hub is not None:
                self.call(self.hub.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(CALL_TIMEOUT_S)
            self.loop.close()

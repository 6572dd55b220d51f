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


class ParkThread:
    """A simulated park (ParkSim: its broker, hub and desk terminal on a virtual reader) serving its web app.

    The desk terminal's reader runs all along, as on a real desk: put_on_desk lays a card on it for the
    page's next orders. Like HubThread, the park runs on a loop of its own thread and `call` runs on it.
    """

    def __init__(self, workdir, cards=0, terminals=0, desk_timeout_s=3):
        from parkcard_devkit.park_sim import ParkSim
        self.api = ApiServer(port=0)
        self.sim = ParkSim(workdir, terminals=terminals, cards=cards, api=self.api)
        self.desk_timeout_s = desk_timeout_s
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="park-loop", daemon=True)
        self.reader = None

    def start(self):
        """Start the loop, the park and the desk's reader loop; return self."""
        self.thread.start()
        self.call(self.sim.start())
        path = self.sim.hub.desk_path
        path.timeout_s = path.read_back_timeout_s = self.desk_timeout_s
        self.reader = asyncio.run_coroutine_threadsafe(self.sim.keep_desk_reading(), self.loop)
        return self

    @property
    def hub(self):
        """The park's Hub."""
        return self.sim.hub

    @property
    def url(self):
        """The web app's address."""
        return self.api.web_url.rstrip("/")

    def call(self, coro):
        """Run coro on the park's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(CALL_TIMEOUT_S * 4)

    def on_loop(self, fn, *args):
        """Run fn(*args) on the park's loop (what touches the virtual reader) and return its result."""
        async def run():
            return fn(*args)
        return self.call(run())

    def stop(self):
        """Stop the desk's reader, the park, then its loop."""
        try:
            if self.reader is not None:
                self.loop.call_soon_threadsafe(self.reader.cancel)
            self.call(self.sim.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(CALL_TIMEOUT_S)
            self.loop.close()

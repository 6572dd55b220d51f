"""A loopback TCP relay that can cut a terminal off the network and put it back (demo, tests)."""

import asyncio

RELAY_CHUNK = 65536


class Relay:
    """Forwards connections from a local port to the broker until cut()."""

    def __init__(self, upstream_host, upstream_port, host="127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)
        self.host = host
        self.port = None
        self.cut_off = False
        self._server = None
        self._links = set()

    async def start(self):
        """Listen on a free loopback port."""
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _accept(self, reader, writer):
        if self.cut_off:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        link = (writer, up_writer)
        self._links.add(link)
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._links.discard(link)
            for w in link:
                w.close()

    def cut(self):
        """Drop every live connection and refuse new ones, like a Wi-Fi outage."""
        self.cut_off = True
        for link in list(self._links):
            for w in link:
                w.close()

    def restore(self):
        """Let connections through again."""
        self.cut_off = False

    async def stop(self):
        """Stop listening and drop everything."""
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def _pipe(reader, writer):
    try:
        while True:
            data = await reader.read(RELAY_CHUNK)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()

"""uvicorn on the hub's own event loop: one more task of the hub's TaskGroup, never a process of its own."""

import contextlib
import socket

import uvicorn

from parkcard.api.app import API_PREFIX, create_app

WEB_HOST = "127.0.0.1"      # loopback unless `parkcard up --web-host` says otherwise


class _HubServer(uvicorn.Server):
    """uvicorn's server without its signal handlers: the hub's serve() owns SIGTERM and SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self):
        """Leave the signals to the hub."""
        yield


class ApiServer:
    """The API and /metrics of one hub: bind() once at start-up (an error there stops the start), then serve()."""

    def __init__(self, host=WEB_HOST, port=0, certfile=None, keyfile=None, time_zone=None):
        """certfile/keyfile: the park's broker certificate and key (parkcard.security.pki) for HTTPS; None: HTTP.

        time_zone: the IANA time zone in which the web app shows every time; None: the park's own, as stored
        (`parkcard park timezone`), read for each page so a change shows at once.
        """
        self.host = host
        self.time_zone = time_zone
        self.app = None             # the application served, once serving
        self.port = port
        self.certfile = certfile
        self.keyfile = keyfile
        self._socket = None

    @property
    def url(self):
        """Where the API is, once bound."""
        return self.web_url + API_PREFIX[1:]

    @property
    def web_url(self):
        """Where the operator web app is, once bound (its login page, for a person)."""
        host = "[%s]" % self.host if ":" in self.host else self.host
        return "%s://%s:%d/" % ("https" if self.certfile else "http", host, self.port)

    def bind(self):
        """Listen on host:port (0: a free port, then self.port says which); OSError when it cannot."""
        if self._socket is None:
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((self.host, self.port))
                sock.listen(128)
            except OSError:
                sock.close()
                raise
            self._socket = sock
            self.port = sock.getsockname()[1]
        return self

    async def serve(self, hub):
        """Serve hub's API until cancelled (the hub's TaskGroup runs this)."""
        self.bind()
        self.app = create_app(hub, self.certfile is not None, self.time_zone)
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", access_log=False,
                                ssl_certfile=self.certfile, ssl_keyfile=self.keyfile, server_header=False)
        server = _HubServer(config)
        try:
            await server.serve(sockets=[self._socket])
        finally:
            self.close()

    def close(self):
        """Stop listening."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None

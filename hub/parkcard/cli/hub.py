"""`parkcard up`: Mosquitto (unless --no-broker) and the hub, until Ctrl-C."""

import click

from parkcard.cli.common import UserError, load_park, park_dir, run, with_storage
from parkcard.hub_lock import HubLockedError
from parkcard.security import secure
from parkcard.store import StoreUnavailable, db_dir, hub_lock_for


class HubStopped(click.ClickException):
    """`up`: the hub could not serve and stopped, everything released; exit 1 so a supervisor restarts it."""

    exit_code = 1   # parkcard.app.EXIT_HUB_FAILED


@click.command()
@click.option("--broker-host", default="127.0.0.1", show_default=True)
@click.option("--broker-port", type=int, default=None,
              help="port [default: %d secure, a free one with --insecure, 1883 with --insecure --no-broker]"
                   % secure.SECURE_PORT)
@click.option("--no-broker", is_flag=True, help="use a broker that is already running")
@click.option("--insecure", is_flag=True, help="plaintext, anonymous broker for development (no `parkcard init`)")
@click.option("--web-port", type=click.IntRange(0, 65535), default=None,
              help="serve /api/v1 and /metrics on this port (0: a free one) [default: not served]")
@click.option("--web-host", default="127.0.0.1", show_default=True,
              help="address the API listens on (HTTPS with the park's certificate after `parkcard init`)")
@click.option("--time-zone", default=None, callback=lambda _c, _p, v: v and checked_time_zone(v),
              help="the IANA time zone in which the web app shows times (e.g. Asia/Shanghai) [default: the park's, "
                   "`parkcard park timezone`]")
@click.pass_obj
def up(obj, broker_host, broker_port, no_broker, insecure, web_port, web_host, time_zone):
    """Run Mosquitto (unless --no-broker) and the hub until Ctrl-C: TLS, passwords and ACL after `parkcard init`."""
    from parkcard.app import Hub, HubFailed, configure_logging, failure_message, serve
    from parkcard.transport.broker import Broker, BrokerError
    from parkcard.transport.broker_auth import BrokerAuthError

    db = obj.db
    park = None if insecure else load_park(park_dir(obj))
    if park is None and not insecure:
        raise UserError("the park has no secrets yet: run `parkcard init` first (looked in %s), "
                        "or pass --insecure for a plaintext development broker" % park_dir(obj))
    configure_logging()
    db_dir(db).mkdir(parents=True, exist_ok=True)
    # Before the broker: a second `up` on this database must not start one (or take its port).
    lock = hub_lock_for(db)
    try:
        lock.acquire()
    except (HubLockedError, StoreUnavailable) as exc:
        raise UserError(str(exc)) from None
    broker = None
    try:
        hub_args = {}
        try:
            if park is not None:
                hub_args = secure.hub_kwargs(park)
                credentials = run(with_storage(db, lambda s: s.broker_credentials(), create=True))
                if not no_broker:
                    broker = secure.start_secure_broker(park_dir(obj), park, credentials,
                                                        port=broker_port or secure.SECURE_PORT, host=broker_host)
                    hub_args["on_terminals_added"] = secure.broker_refresher(broker, park)
            elif not no_broker:
                broker = Broker(db_dir(db) / "broker", port=broker_port).start()
        except (BrokerError, BrokerAuthError) as exc:
            raise UserError(str(exc)) from None
        if broker is not None:
            broker_host, broker_port = broker.host, broker.port
            click.echo("mosquitto listening on %s:%d (%s), up to %d terminal connections (open-file limit %d)"
                       % (broker_host, broker_port, "TLS, passwords, ACL" if broker.secure else "INSECURE",
                          broker.connections_max, broker.open_files_max))
        # --no-broker: the default port is the one a park of this kind listens on.
        default_port = secure.SECURE_PORT if park is not None else 1883
        if web_port is not None:
            hub_args["api"] = _api_server(park, web_host, web_port, time_zone)
            click.echo("api listening on %s (OpenAPI at %s/openapi.json, Prometheus at /metrics)"
                       % (hub_args["api"].url, hub_args["api"].url))
            click.echo("web app on %s (log in with an operator account: `parkcard operator add`)"
                       % hub_args["api"].web_url)
        try:
            run(serve(Hub(db, broker_host, broker_port or default_port, lock=lock, **hub_args)))
        except HubFailed as exc:
            raise HubStopped(failure_message(exc)) from None
    finally:
        if broker is not None:
            broker.stop()
        lock.release()


def checked_time_zone(name):
    """An IANA time zone name this machine knows; UserError otherwise."""
    from parkcard.domain import park_time
    try:
        park_time.zone(name)
    except park_time.TimeZoneError as exc:
        raise UserError(str(exc)) from None
    return name


def _api_server(park, host, port, time_zone):
    """The bound ApiServer of `up`: HTTPS with the broker's certificate and key when the park has its PKI."""
    from parkcard.api.server import ApiServer
    tls = dict(certfile=str(park.pki.server_cert), keyfile=str(park.pki.server_key)) if park is not None else {}
    try:
        return ApiServer(host, port, time_zone=time_zone, **tls).bind()
    except OSError as exc:
        raise UserError("the API cannot listen on %s:%d (%s): pick another --web-port" % (host, port, exc)) from None

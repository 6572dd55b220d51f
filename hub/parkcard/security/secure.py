"""The park's secrets and the secure park: TLS broker, per-terminal passwords, ACL, hub login.

`parkcard init` calls `init_park(dir)`. It creates, only where missing, and never replaces:

- `dir/pki/`: the park CA and the broker's server certificate (parkcard.security.pki.ensure_pki);
- `dir/park-secrets.json` (0600, the directory 0700): the hub-side secrets —
  the park's card master keys (protocol.card_issue.ParkKeys: master A, B, MAC, 32
  random bytes each), the transport key that seals them on admin system cards
  (32 random bytes, also in every terminal's key store via its bundle), and the
  hub's broker password. Lose this file and no new card or admin card can be
  made for the cards in circulation: back it up with the database.

Terminal broker passwords live with the terminals in the database (terminals.broker_password).

A running park (`parkcard up`, or `start_secure_park` for the simulator):

    secrets = init_park(workdir)[0]
    broker = start_secure_broker(workdir, secrets, {1: "pw-of-term-1", ...})
    hub = Hub(db, broker.host, broker.port, **hub_kwargs(secrets))
    ...                                       # a terminal is registered:
    refresh_terminals(broker, secrets, {1: ..., 2: ...})   # password file rewritten, SIGHUP
"""

import asyncio
import json
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from protocol import card_issue, topics

from parkcard.security.files import write_atomic
from parkcard.security.pki import CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY, ParkPKI, check_hostnames, ensure_pki
from parkcard.transport import broker_auth
from parkcard.transport.broker import Broker

SECRETS_FILE = "park-secrets.json"
PKI_DIR = "pki"
BROKER_DIR = "broker"
PASSWORD_FILE = "broker.passwd"
ACL_FILE = "broker.acl"
SECURE_PORT = 8883              # MQTT over TLS (IANA)
TRANSPORT_KEY_SIZE = 32
MASTER_KEY_SIZE = 32
SECRETS_VERSION = 1


class SecureParkError(RuntimeError):
    """The park's secrets are missing, unreadable or inconsistent; the message says what to do."""


@dataclass(frozen=True)
class ParkSecrets:
    """What `parkcard init` made: card master keys, transport key, hub broker password, PKI."""

    park_keys: card_issue.ParkKeys
    transport_key: bytes
    hub_password: str
    pki: ParkPKI
    path: Path


def secrets_path(directory):
    """Where the park's secrets file lives in directory."""
    return Path(directory) / SECRETS_FILE


def init_park(directory, hostnames=()):
    """Create what is missing of the park's PKI and secrets in directory; return (ParkSecrets, created).

    created lists what this call wrote (e.g. ["pki/ca.crt", ..., "park-secrets.json"]); empty when the
    park was already initialised. Existing keys are never replaced.
    """
    check_hostnames(hostnames)      # before anything is written
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    pki = ensure_pki(directory / PKI_DIR, hostnames)
    created = ["%s/%s" % (PKI_DIR, name) for name in pki.created]
    path = secrets_path(directory)
    if not path.exists():
        data = {
            "version": SECRETS_VERSION,
            "park_keys": {name: os.urandom(MASTER_KEY_SIZE).hex() for name in ("master_a", "master_b", "master_mac")},
            "transport_key": os.urandom(TRANSPORT_KEY_SIZE).hex(),
            "hub_password": broker_auth.new_password(),
        }
        write_atomic(path, (json.dumps(data, indent=2) + "\n").encode(), 0o600)
        created.append(SECRETS_FILE)
    return load_park(directory), created


def load_park(directory):
    """Return the ParkSecrets of directory, None when `parkcard init` has not run there."""
    directory = Path(directory)
    path = secrets_path(directory)
    if not path.exists():
        return None
    if os.stat(path).st_mode & 0o077:
        raise SecureParkError("%s is readable by others: chmod 600 %s" % (path, path))
    try:
        data = json.loads(path.read_text())
        keys = data["park_keys"]
        park_keys = card_issue.ParkKeys(*(bytes.fromhex(keys[n]) for n in ("master_a", "master_b", "master_mac")))
        transport_key = bytes.fromhex(data["transport_key"])
        hub_password = data["hub_password"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SecureParkError("%s is damaged (%s): restore it from the backup" % (path, exc)) from None
    if len(transport_key) != TRANSPORT_KEY_SIZE or not isinstance(hub_password, str) or not hub_password:
        raise SecureParkError("%s is damaged (transport key or hub password): restore it from the backup" % path)
    pki_dir = directory / PKI_DIR
    files = [pki_dir / n for n in (CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY)]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise SecureParkError("missing %s: run `parkcard init` again (it keeps the CA if ca.key is there)"
                              % ", ".join(missing))
    return ParkSecrets(park_keys, transport_key, hub_password, ParkPKI(*files), path)


def hub_kwargs(secrets):
    """Keyword arguments of parkcard.app.Hub for a hub in a secure park."""
    return {"tls_ca": str(secrets.pki.ca_cert), "username": broker_auth.HUB_USERNAME,
            "password": secrets.hub_password, "park_keys": secrets.park_keys,
            "transport_key": secrets.transport_key}


def broker_credentials(secrets, terminals):
    """{username: password} for the broker: the hub and every terminal of {terminal_id: password}."""
    creds = {broker_auth.HUB_USERNAME: secrets.hub_password}
    for terminal_id, password in dict(terminals).items():
        creds[topics.client_name(terminal_id)] = password
    return creds


def write_broker_auth(workdir, secrets, terminals):
    """Write the password file and ACL into workdir; return (password_file, acl_file)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    password_file, acl_file = workdir / PASSWORD_FILE, workdir / ACL_FILE
    broker_auth.write_password_file(password_file, broker_credentials(secrets, terminals))
    broker_auth.write_acl_file(acl_file, broker_auth.HUB_USERNAME)
    return password_file, acl_file


def start_secure_broker(workdir, secrets, terminals, port=None, host="127.0.0.1"):
    """Start Mosquitto TLS-only with the park PKI, passwords of the hub and terminals, and the ACL.

    terminals: {terminal_id: broker password} (or (id, password) pairs). Returns the started Broker.
    """
    password_file, acl_file = write_broker_auth(workdir, secrets, terminals)
    broker = Broker(Path(workdir) / BROKER_DIR, port=port, host=host, tls=secrets.pki.broker_tls(),
                    password_file=password_file, acl_file=acl_file)
    return broker.start()


def refresh_terminals(broker, secrets, terminals):
    """Rewrite the running broker's password file for {terminal_id: password} and make it reload."""
    broker_auth.write_password_file(broker.password_file, broker_credentials(secrets, terminals))
    broker.reload()


def broker_refresher(broker, secrets):
    """A Hub on_terminals_added callback: rewrite the password file from the hub's terminals and reload."""
    async def refresh(hub, _terminal_ids):
        credentials = await hub.terminal_credentials()
        await asyncio.to_thread(refresh_terminals, broker, secrets, credentials)
    return refresh


def start_secure_park(workdir, terminals=(), port=None, hostnames=()):
    """Initialise (if needed) the park in workdir and start its secure broker; return (broker, hub_kwargs, secrets)."""
    secrets, _created = init_park(workdir, hostnames)
    broker = start_secure_broker(workdir, secrets, terminals, port=port)
    return broker, hub_kwargs(secrets), secrets


def terminal_tls_context(ca):
    """An ssl.SSLContext that trusts only the park CA (a path or PEM bytes) and checks the broker's name.

    For CPython terminals (paho: client.tls_set_context(ctx)); MicroPython terminals take the CA in DER.
    """
    pem = ca.decode() if isinstance(ca, bytes) else Path(ca).read_text()
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=pem)   # cadata: no system CAs
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx

"""Load and check the provisioning bundle the hub exports for one terminal.

`parkcard terminal add ... --export bundle.json` writes it; this tool never
invents a terminal's identity, so a missing or invalid bundle stops the flash.
Every problem is reported at once, each prefixed with the file name.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from .errors import FlashError

KEY_BYTES = 32
PASSWORD_BYTES_MAX = 128  # the device's NVS read-back buffer (device.NVS_BLOB_MAX)
SSID_BYTES_MAX = 32  # IEEE 802.11 SSID element
WIFI_PASSWORD_MIN, WIFI_PASSWORD_MAX = 8, 64  # WPA2 passphrase 8-63, or 64 hex digits
EXPORT_HINT = "export it on the hub with `parkcard terminal add ... --export bundle.json`"


@dataclass(frozen=True)
class Bundle:
    """One terminal's identity, broker account and credentials."""

    terminal_id: int
    terminal_key: bytes
    transport_key: bytes
    username: str
    password: str
    broker_host: str
    broker_port: int
    ca_pem: str | None
    wifi_ssid: str
    wifi_password: str

    def secrets(self):
        """Return {name: bytes} of everything that must never leave the bundle except into NVS."""
        return {
            "terminal_key": self.terminal_key,
            "transport_key": self.transport_key,
            "password": self.password.encode(),
            "wifi_password": self.wifi_password.encode(),
        }

    def public_config(self, ca_file):
        """Return the non-secret settings written to /terminal.json on the device."""
        return {
            "terminal_id": self.terminal_id,
            "broker_host": self.broker_host,
            "broker_port": self.broker_port,
            "username": self.username,
            "wifi_ssid": self.wifi_ssid,
            "ca": ca_file if self.ca_pem else None,  # read by firmware terminal/start.py
        }


def _key(data, name, problems, missing_why=""):
    if name not in data:
        problems.append("%s missing%s" % (name, missing_why))
        return b""
    value = data[name]
    if not isinstance(value, str) or len(value) != 2 * KEY_BYTES:
        problems.append("%s must be %d hex digits" % (name, 2 * KEY_BYTES))
        return b""
    try:
        return bytes.fromhex(value)
    except ValueError:
        problems.append("%s must be %d hex digits" % (name, 2 * KEY_BYTES))
        return b""


def _text(data, name, problems, max_bytes, min_chars=1, spaces=True):
    value = data.get(name)
    if not isinstance(value, str):
        problems.append("%s missing or not a string" % name)
        return ""
    size = len(value.encode())
    if len(value) < min_chars or size > max_bytes:
        problems.append("%s must be %d to %d bytes long" % (name, min_chars, max_bytes))
    elif not spaces and any(c.isspace() for c in value):
        problems.append("%s must not contain spaces" % name)
    return value


def _int(data, name, problems, low, high):
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        problems.append("%s must be a whole number from %d to %d" % (name, low, high))
        return 0
    return value


def _ca(data, problems):
    value = data.get("ca_pem")
    if value is None:
        return None
    if not isinstance(value, str):
        problems.append("ca_pem must be a PEM certificate or null")
        return None
    from cryptography import x509

    try:
        x509.load_pem_x509_certificates(value.encode())
    except ValueError:
        problems.append("ca_pem is not a PEM certificate")
    return value


def parse_bundle(data, source="bundle"):
    """Check a decoded bundle and return a Bundle, or raise FlashError listing every problem."""
    if not isinstance(data, dict):
        raise FlashError("%s: must be a JSON object; %s" % (source, EXPORT_HINT))
    problems = []
    terminal_id = _int(data, "terminal_id", problems, 1, 2**31 - 1)
    terminal_key = _key(data, "terminal_key", problems)
    transport_key = _key(data, "transport_key", problems,
                         ": the terminal needs it to unlock the admin system card; re-export the bundle")
    if terminal_key and terminal_key == transport_key:
        problems.append("terminal_key and transport_key are the same key")
    wifi_password = _text(data, "wifi_password", problems, WIFI_PASSWORD_MAX, min_chars=0)
    if wifi_password and len(wifi_password) < WIFI_PASSWORD_MIN:
        problems.append("wifi_password must be empty (open network) or %d to 63 characters"
                        % WIFI_PASSWORD_MIN)
    bundle = Bundle(
        terminal_id=terminal_id,
        terminal_key=terminal_key,
        transport_key=transport_key,
        username=_text(data, "username", problems, 64, spaces=False),
        password=_text(data, "password", problems, PASSWORD_BYTES_MAX),
        broker_host=_text(data, "broker_host", problems, 253, spaces=False),
        broker_port=_int(data, "broker_port", problems, 1, 65535),
        ca_pem=_ca(data, problems),
        wifi_ssid=_text(data, "wifi_ssid", problems, SSID_BYTES_MAX),
        wifi_password=wifi_password,
    )
    if problems:
        raise FlashError("\n".join("%s: %s" % (source, p) for p in problems))
    return bundle


def load_bundle(path):
    """Read and check the bundle file at path."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FlashError("%s: no such file; the terminal is unknown until you %s"
                         % (path, EXPORT_HINT)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FlashError("%s: cannot read: %s" % (path, exc)) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FlashError("%s: not JSON (line %d column %d: %s); %s"
                         % (path, exc.lineno, exc.colno, exc.msg, EXPORT_HINT)) from None
    return parse_bundle(data, str(path))

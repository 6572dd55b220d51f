"""The park's own PKI: one CA the terminals trust and the broker's server certificate.

`parkcard init` calls `ensure_pki(dir, hostnames)`. It creates only what is
missing or no longer fits and loads the rest, so running it again is harmless:

- the CA (ca.crt, ca.key): self-signed, EC P-256, valid CA_VALIDITY_DAYS. It is
  never replaced once made — every terminal trusts it (the flash tool copies
  ca.crt onto the terminal); a lost ca.key is an error, not a reason to start over.
- the broker's certificate (server.crt, server.key): EC P-256 signed by the CA,
  SAN localhost, 127.0.0.1 and the extra names. It is reissued when missing, not
  signed by the CA, lacking a requested name, or within SERVER_RENEW_DAYS of its
  end; terminals trust the CA, so a new server certificate needs no terminal change.
  Names accumulate: a reissued certificate keeps every name the old one carried
  (bundles exported for `init --hostname A` keep working after `init --hostname B`).
  A name must be a DNS name (RFC 1123: labels of letters, digits and inner
  hyphens, 1..63 characters, 253 in all) or an IP address; anything else is
  refused before a file is written.

EC P-256 because the terminals' mbedTLS (ESP-IDF, and the MicroPython unix port
the tests use) verifies ECDSA P-256 and an ECDHE-ECDSA handshake costs the ESP32
less heap and time than RSA 2048. Private keys are written 0600, unencrypted:
Mosquitto must read server.key unattended; ca.key is used only by `parkcard init`.
"""

import datetime
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from parkcard.security.files import write_atomic

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
SERVER_CERT = "server.crt"
SERVER_KEY = "server.key"
CA_VALIDITY_DAYS = 3650
SERVER_VALIDITY_DAYS = 825
SERVER_RENEW_DAYS = 30
# Certificates start a little in the past: a terminal whose clock is slightly
# behind must not see a certificate that is "not yet valid".
BACKDATE = datetime.timedelta(hours=1)
DEFAULT_HOSTNAMES = ("localhost", "127.0.0.1")
DNS_NAME_MAX = 253
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class PKIError(RuntimeError):
    """The PKI directory is inconsistent in a way ensure_pki must not paper over."""


@dataclass(frozen=True)
class ParkPKI:
    """Paths of the park's CA and broker certificate, and what ensure_pki created."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    created: tuple = ()         # file names written by this call, e.g. ("server.crt", "server.key")

    def ca_pem(self):
        """The CA certificate in PEM: what a terminal or the hub trusts."""
        return self.ca_cert.read_bytes()

    def ca_der(self):
        """The CA certificate in DER (the smaller form to put on a terminal)."""
        return load_cert(self.ca_cert).public_bytes(serialization.Encoding.DER)

    def broker_tls(self):
        """The broker's TLS files as parkcard.transport.broker.BrokerTLS."""
        from parkcard.transport.broker import BrokerTLS
        return BrokerTLS(cafile=self.ca_cert, certfile=self.server_cert, keyfile=self.server_key)


def ensure_pki(directory, hostnames=()):
    """Create the park CA and broker certificate in directory where missing; return ParkPKI.

    hostnames are extra DNS names or IP addresses for the broker certificate,
    added to localhost and 127.0.0.1 (the names terminals use to reach it).
    """
    names = _unique(DEFAULT_HOSTNAMES + check_hostnames(hostnames))
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    paths = {name: directory / name for name in (CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY)}
    created = []
    now = _now()

    if paths[CA_CERT].exists() != paths[CA_KEY].exists():
        present = CA_CERT if paths[CA_CERT].exists() else CA_KEY
        raise PKIError(f"{directory}: {present} without its pair; restore the missing file "
                       "(a new CA would lock out every provisioned terminal)")
    if not paths[CA_CERT].exists():
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = _ca_certificate(ca_key, now)
        _write_private(paths[CA_KEY], _key_pem(ca_key))
        _write_public(paths[CA_CERT], ca_cert.public_bytes(serialization.Encoding.PEM))
        created += [CA_KEY, CA_CERT]
    else:
        ca_key = load_key(paths[CA_KEY])
        ca_cert = load_cert(paths[CA_CERT])
        if ca_cert.public_key().public_numbers() != ca_key.public_key().public_numbers():
            raise PKIError(f"{paths[CA_KEY]} does not belong to {paths[CA_CERT]}")

    if _server_needs_issue(paths[SERVER_CERT], paths[SERVER_KEY], ca_cert, names, now):
        names = _unique(names + _old_names(paths[SERVER_CERT]))
        server_key = ec.generate_private_key(ec.SECP256R1())
        server_cert = _server_certificate(server_key, ca_key, ca_cert, names, now)
        _write_private(paths[SERVER_KEY], _key_pem(server_key))
        _write_public(paths[SERVER_CERT], server_cert.public_bytes(serialization.Encoding.PEM))
        created += [SERVER_KEY, SERVER_CERT]

    return ParkPKI(paths[CA_CERT], paths[CA_KEY], paths[SERVER_CERT], paths[SERVER_KEY], tuple(created))


def check_hostnames(hostnames):
    """Return the names normalised (IP addresses canonical, DNS names lower case); PKIError for an invalid one."""
    out = []
    for name in hostnames:
        normal = _normalise(name.strip())
        if not _valid_name(normal):
            raise PKIError("%r is neither a DNS name (letters, digits and inner hyphens, dot-separated labels of "
                           "1-63 characters, %d in all) nor an IP address; nothing was written"
                           % (name, DNS_NAME_MAX))
        out.append(normal)
    return tuple(out)


def _valid_name(name):
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    return 0 < len(name) <= DNS_NAME_MAX and all(_DNS_LABEL.match(label) for label in name.split("."))


def _old_names(cert_path):
    """The names of the certificate being replaced, valid ones only, to carry over."""
    try:
        old = san_names(load_cert(cert_path))
    except (OSError, ValueError):
        return ()
    return tuple(sorted(n for n in map(_normalise, old) if _valid_name(n)))


def load_cert(path):
    """Load a PEM certificate."""
    return x509.load_pem_x509_certificate(Path(path).read_bytes())


def load_key(path):
    """Load an unencrypted PEM private key."""
    return serialization.load_pem_private_key(Path(path).read_bytes(), password=None)


def san_names(cert):
    """The certificate's subject alternative names as strings (DNS names and IPs)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(name.value) for name in san}


def _server_needs_issue(cert_path, key_path, ca_cert, names, now):
    if not (cert_path.exists() and key_path.exists()):
        return True
    cert = load_cert(cert_path)
    if cert.public_key().public_numbers() != load_key(key_path).public_key().public_numbers():
        return True
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return True
    if cert.not_valid_after_utc - now < datetime.timedelta(days=SERVER_RENEW_DAYS):
        return True
    return not {_normalise(n) for n in names} <= {_normalise(n) for n in san_names(cert)}


def _ca_certificate(key, now):
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ParkCard park"),
        x509.NameAttribute(NameOID.COMMON_NAME, "ParkCard park CA"),
    ])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    return (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=CA_VALIDITY_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )


def _server_certificate(key, ca_key, ca_cert, names, now):
    alt_names = []
    for name in names:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt_names.append(x509.DNSName(name))
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(min(now + datetime.timedelta(days=SERVER_VALIDITY_DAYS), ca_cert.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def _normalise(name):
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name.lower().rstrip(".")     # DNS names compare case-insensitively; the root dot is implied


def _unique(names):
    seen = []
    for name in names:
        name = _normalise(name.strip())
        if name and name not in seen:
            seen.append(name)
    return tuple(seen)


def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write_private(path, data):
    """Write a private key 0600 from its first byte, replacing any old file atomically."""
    write_atomic(path, data, 0o600)


def _write_public(path, data):
    write_atomic(path, data, 0o644)

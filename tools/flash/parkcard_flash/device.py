"""The MicroPython text that runs on the terminal during provisioning.

Three scripts: `clean` removes the previous application (code and config,
never the journal or other data files), `nvs_script` stores the secrets in the
ESP32's NVS key store, and `verify_script` prints a sha256 per image file and
whether each NVS key exists (never its value). All run under MicroPython on the
ESP32 and, in the tests, under the unix port with a stand-in `esp32` module.
"""

NVS_NAMESPACE = "parkcard"  # NVS names are at most 15 characters (ESP-IDF NVS_KEY_NAME_MAX_SIZE - 1)
# Bundle secret name -> NVS key name. The firmware reads these with
# esp32.NVS("parkcard").get_blob(key, buf); passwords are UTF-8 bytes.
NVS_KEYS = {
    "terminal_key": "terminal_key",
    "transport_key": "transport_key",
    "password": "broker_password",
    "wifi_password": "wifi_password",
}
NVS_BLOB_MAX = 128  # read-back buffer; bundle.py keeps every secret within it
CONFIG_FILE = "terminal.json"
CA_FILE = "ca.der"  # MicroPython's ssl takes the CA in DER only (cadata=)
# What `clean` removes before a new image is copied: the previous code and
# config. Anything else on the filesystem (the journal, the blacklist) stays.
OLD_APPLICATION = ("main.py", "boot.py", "terminal", "protocol", CONFIG_FILE, CA_FILE)

_CLEAN = '''import os
def _rm(p):
    try:
        mode = os.stat(p)[0]
    except OSError:
        return
    if mode & 0x4000:
        for e in os.ilistdir(p):
            _rm(p + "/" + e[0])
        os.rmdir(p)
    else:
        os.remove(p)
for p in %r:
    _rm(%r + p)
print("CLEAN")
'''

_VERIFY = '''import hashlib, binascii
ROOT = %r
FILES = %r
KEYS = %r
buf = bytearray(512)
mv = memoryview(buf)
for path in FILES:
    h = hashlib.sha256()
    try:
        with open(ROOT + path, "rb") as f:
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                h.update(mv[:n])
        print("FILE", path, binascii.hexlify(h.digest()).decode())
    except OSError:
        print("FILE", path, "missing")
blob = bytearray(%d)
try:
    import esp32
    nvs = esp32.NVS(%r)
except ImportError:
    nvs = None
for key in KEYS:
    try:
        nvs.get_blob(key, blob)
        print("NVS", key, "present")
    except (OSError, AttributeError):
        print("NVS", key, "missing")
print("END")
'''


def clean_script(root="/"):
    """Return the script removing the previous application below root."""
    return _CLEAN % (OLD_APPLICATION, root)


def nvs_keys(bundle):
    """Return the NVS key names this bundle stores (an open Wi-Fi network has no password)."""
    return [NVS_KEYS[name] for name, value in bundle.secrets().items() if value]


def nvs_script(hex_values):
    """Return the one-line script storing {nvs key: hex string} in NVS and committing.

    The values are substituted as given, so the plan can render the same
    script with placeholders instead of secrets.
    """
    # Double quotes only, so the shell-quoted plan line stays readable.
    parts = ["import esp32,binascii", 'n=esp32.NVS("%s")' % NVS_NAMESPACE]
    parts += ['n.set_blob("%s",binascii.unhexlify("%s"))' % (key, value) for key, value in hex_values.items()]
    parts += ["n.commit()", 'print("NVS",%d)' % len(hex_values)]
    return ";".join(parts)


def verify_script(entries, keys, root="/"):
    """Return the script hashing every manifest file below root and checking the NVS keys."""
    return _VERIFY % (root, [e["path"] for e in entries], list(keys), NVS_BLOB_MAX, NVS_NAMESPACE)


def check_verify_output(stdout, entries, keys):
    """Compare the verify script's output with the manifest; return a list of problems."""
    files, nvs, ended = {}, {}, False
    for line in stdout.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[0] == "FILE":
            files[fields[1]] = fields[2]
        elif len(fields) == 3 and fields[0] == "NVS":
            nvs[fields[1]] = fields[2]
        elif fields == ["END"]:
            ended = True
    problems = []
    for entry in entries:
        got = files.get(entry["path"])
        if got is None or got == "missing":
            problems.append("%s: missing on the device" % entry["path"])
        elif got != entry["sha256"]:
            problems.append("%s: differs from the image (sha256 %s, expected %s)"
                            % (entry["path"], got[:16], entry["sha256"][:16]))
    for key in keys:
        if nvs.get(key) != "present":
            problems.append("NVS %s/%s: missing" % (NVS_NAMESPACE, key))
    if not ended:
        problems.append("the verify script did not finish (no END line)")
    return problems

"""What a terminal takes from the hub a few times a day (terminal/sync.py's Sync): a config, a command,
and the config stored in flash at start. Loaded for one frame and forgotten after it (compat.borrow).
"""

from binascii import hexlify, unhexlify

from protocol import frames
from protocol.config import out_of_range
from protocol.errors import ProtocolError


def restore_config(sync):
    """At start: the config stored in flash is in force again, unless no longer valid."""
    state = sync.state
    try:
        cfg = frames.Config.decode(unhexlify(state.config_hex))
    except (ProtocolError, ValueError):
        cfg = None
    if cfg is None or out_of_range(cfg):
        # Stored by a firmware that took any config: none is in force, and the first T_SYNC
        # (config version 0) asks the hub for it.
        state.config_hex = ""
    else:
        sync.wallet.config = cfg


def on_config(sync, frame):
    """Take a T_CONFIG (SPEC.md §5.3) in range: in force, stored, and given to the watchers."""
    cfg = frames.Config.decode(frame.body)
    if out_of_range(cfg):
        sync.state.save()  # the counter is spent: a replay stays refused after a reboot
        return sync._refuse("config_range")
    sync.wallet.config = cfg
    config_hex = hexlify(frame.body).decode()
    if config_hex != sync.state.config_hex:
        sync._status_due = True
    sync.state.config_hex = config_hex
    sync.state.save()
    for watcher in sync._config_watchers:
        watcher(cfg)


def on_command(sync, frame):
    """Take a T_COMMAND: a status report asked for, or the runtime's command (authorisation, lock)."""
    command, argument = frames.parse_command(frame.body)
    sync.state.save()  # a replayed command must stay refused after a reboot
    if command == frames.CMD_REPORT_STATUS:
        sync._status_due = True
    if sync.on_command:
        sync.on_command(command, argument)

"""parkcard.security.files: the one way the hub writes secrets and files a broker reloads."""

import os
import stat

from parkcard.security.files import write_atomic, write_new


def test_write_atomic_replaces_whole_with_the_mode_asked(tmp_path):
    path = tmp_path / "secrets.json"
    path.write_bytes(b"old")
    os.chmod(path, 0o644)
    (tmp_path / "secrets.json.tmp").write_bytes(b"torn")   # left by a write a crash interrupted
    old_umask = os.umask(0o022)
    try:
        write_atomic(path, b"new", 0o600)
    finally:
        os.umask(old_umask)
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secrets.json"]


def test_write_new_sets_the_mode_despite_a_narrow_umask(tmp_path):
    path = tmp_path / "acl"
    old_umask = os.umask(0o077)
    try:
        write_new(path, b"topic read x\n", 0o644)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert path.read_bytes() == b"topic read x\n"

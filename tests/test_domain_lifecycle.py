"""Lifecycle names (parkcard.domain.lifecycle): one name per state, the strings the store keeps."""

import ast
from pathlib import Path

from protocol import record as R

import parkcard.domain

from parkcard.domain.lifecycle import (UPLOAD_STATUS, AdminCardState, RecordStatus,
                                       TerminalStatus)


def test_record_statuses_are_the_stored_strings():
    assert [s.value for s in RecordStatus] == ["applied", "voided", "uncertain", "quarantined"]


def test_every_upload_status_maps_to_one_hub_status():
    assert UPLOAD_STATUS == {R.STATUS_COMMITTED: RecordStatus.APPLIED, R.STATUS_VOIDED: RecordStatus.VOIDED,
                             R.STATUS_UNCERTAIN: RecordStatus.UNCERTAIN}


def test_a_terminal_status_from_its_flags_puts_the_lock_first():
    assert TerminalStatus.of(authorised=1, locked=1) is TerminalStatus.LOCKED
    assert TerminalStatus.of(authorised=1, locked=0) is TerminalStatus.AUTHORISED
    assert TerminalStatus.of(authorised=0, locked=0) is TerminalStatus.UNAUTHORISED


def test_only_a_written_admin_card_is_named_written():
    assert AdminCardState("written") is AdminCardState.WRITTEN
    assert {s.value for s in AdminCardState} == {"pending", "written", "failed", "abandoned"}


def test_a_cancelled_admin_card_is_abandoned_even_when_written_and_its_request_says_why():
    assert AdminCardState.settled(cancelled=True, written=True) is AdminCardState.ABANDONED
    assert AdminCardState.settled(cancelled=False, written=True) is AdminCardState.WRITTEN
    assert AdminCardState.settled(cancelled=False, written=False) is AdminCardState.FAILED
    assert "admin card 7 is abandoned" in AdminCardState.ABANDONED.request_error(7, "timeout")
    assert AdminCardState.WRITTEN.request_error(7, None) is None
    assert AdminCardState.FAILED.request_error(7, "no card") == "no card"


def test_the_domain_imports_nothing_that_does_io():
    # Pure computation from the standard library: calendars (and zoneinfo's read-only time zone data, the park's
    # days), JSON text, URL parsing, HMAC signatures (webhooks) and the operator module's item getters.
    pure_stdlib = ("enum", "typing", "dataclasses", "datetime", "zoneinfo", "json", "urllib.parse", "hmac", "hashlib",
                   "operator")
    domain = Path(parkcard.domain.__file__).parent
    for path in sorted(domain.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert name in pure_stdlib or name.split(".")[0] == "protocol" or \
                    name.startswith("parkcard.domain"), "%s imports %s" % (path.name, name)

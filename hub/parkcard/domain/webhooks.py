"""Webhooks for third parties: which events there are, what each says, how it is signed, when it is tried again.
Pure rules (the store keeps the outbox, parkcard.webhooks delivers it).

An event is JSON, sent as it was made: {"event", "id", "at", ...what it is about}. Its signature is
HMAC-SHA256 of the exact body bytes under the webhook's secret, sent as `X-ParkCard-Signature: sha256=<hex>`;
a receiver recomputes it over the body it got and compares in constant time. "id" is unique per event
("record:<id>", "alarm:<id>"): a receiver that sees one twice (its answer was lost) ignores the second.
"""

import hashlib
import hmac
import json
import urllib.parse

from protocol import record as R

from parkcard.domain.explained import Explained
from parkcard.domain.lifecycle import RecordStatus

SALE, TOP_UP, ALARM = "sale", "top_up", "alarm"
EVENTS = (SALE, TOP_UP, ALARM)
SIGNATURE_HEADER = "X-ParkCard-Signature"
EVENT_HEADER = "X-ParkCard-Event"
DELIVERY_HEADER = "X-ParkCard-Delivery"
URL_MAX = 500
SECRET_MIN = 16
SECRET_MAX = 200
RETRY_DELAY_S_MIN = 5               # the first retry; each further one waits twice as long ...
RETRY_DELAY_S_MAX = 3600            # ... up to an hour
ATTEMPTS_MAX = 20                   # about a day of trying; then the event is given up on (counted, listed)
_RECORD_EVENTS = {R.KIND_DEBIT: SALE, R.KIND_TOPUP: TOP_UP}


class WebhookError(Explained):
    """A webhook that cannot be registered as given; the message says what to give instead."""


def checked_url(url):
    """The receiver's URL as given when it is http(s) with a host; WebhookError otherwise."""
    url = (url or "").strip()
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > URL_MAX:
        raise WebhookError("%(url)r is not a webhook URL: give http:// or https:// with a host, at most %(most)d "
                           "characters", url=url, most=URL_MAX)
    return url


def checked_events(events):
    """The event types, unique and in EVENTS order; WebhookError for none or an unknown one."""
    wanted = set(events or ())
    unknown = sorted(wanted - set(EVENTS))
    if unknown:
        raise WebhookError("unknown event type %(unknown)s: give one or more of %(events)s",
                           unknown=", ".join(unknown), events=", ".join(EVENTS))
    if not wanted:
        raise WebhookError("no event type: give one or more of %(events)s", events=", ".join(EVENTS))
    return [e for e in EVENTS if e in wanted]


def checked_secret(secret):
    """The signing secret; WebhookError when too short to sign with or too long."""
    if not isinstance(secret, str) or not SECRET_MIN <= len(secret) <= SECRET_MAX or not secret.isprintable():
        raise WebhookError("a webhook secret is %(least)d to %(most)d printable characters (leave it out and one is "
                           "made)", least=SECRET_MIN, most=SECRET_MAX)
    return secret


def signature(secret, body):
    """The signature header's value of body (bytes) under secret: "sha256=<hex HMAC-SHA256>"."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def retry_delay_s(attempts):
    """Seconds to wait after the attempts-th failed attempt (1, 2, ...): doubling, capped."""
    return min(RETRY_DELAY_S_MAX, RETRY_DELAY_S_MIN * 2 ** max(0, min(attempts - 1, 30)))


def _body(fields):
    return json.dumps(fields, sort_keys=True, separators=(",", ":"))


def event_of(source, row, wanted, currency):
    """(event, event id, JSON body) of a stored record or alarm a webhook wants, else None.

    source "record": row (id, terminal_id, seq, kind, card_no, amount_cents, balance_after_cents, time_s, status);
    only an applied sale or top-up is an event. source "alarm": row (id, kind, card_no, terminal_id, seq, detail, at).
    """
    if source == "record":
        record_id, terminal_id, seq, kind, card_no, amount_cents, balance_cents, time_s, status = row
        event = _RECORD_EVENTS.get(kind)
        if event is None or event not in wanted or status != RecordStatus.APPLIED:
            return None
        key = "record:%d" % record_id
        return event, key, _body({"event": event, "id": key, "at": int(time_s), "terminal_id": terminal_id,
                                  "seq": seq, "card_no": card_no, "amount_cents": amount_cents,
                                  "balance_after_cents": balance_cents, "currency": currency})
    alarm_id, kind, card_no, terminal_id, seq, detail, at = row
    if ALARM not in wanted:
        return None
    key = "alarm:%d" % alarm_id
    return ALARM, key, _body({"event": ALARM, "id": key, "at": int(at), "kind": kind, "card_no": card_no,
                              "terminal_id": terminal_id, "seq": seq, "detail": detail})

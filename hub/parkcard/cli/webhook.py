"""`parkcard webhook add|list|remove`: where the park's events (sales, top-ups, alarms) are sent, signed."""

import click

from parkcard.cli.common import in_store, table, utc
from parkcard.domain.webhooks import EVENTS, SIGNATURE_HEADER
from parkcard.services import webhooks


@click.group("webhook")
def webhook():
    """Third parties' webhooks: a URL, the events it wants, the secret that signs them."""


@webhook.command("add")
@click.option("--url", required=True, help="the receiver, http(s)://host/path")
@click.option("--event", "events", multiple=True, required=True, type=click.Choice(EVENTS),
              help="an event type it wants (repeat for several)")
@click.option("--secret", default=None, help="the signing secret agreed with the receiver [default: one is made]")
@click.pass_obj
def webhook_add(obj, url, events, secret):
    """Register a webhook for events from now on; print its id and secret (shown once)."""
    webhook_id, secret = in_store(obj, lambda s, actor: webhooks.add(s, actor, url, events, secret), create=True)
    click.echo("webhook %d: %s gets %s\nsecret: %s\nEach event is a JSON POST signed in %s: sha256=<hex HMAC-SHA256 "
               "of the body under the secret>." % (webhook_id, url, ", ".join(e for e in EVENTS if e in events),
                                                  secret, SIGNATURE_HEADER))


@webhook.command("list")
@click.pass_obj
def webhook_list(obj):
    """Every active webhook: URL, events, who added it, and its deliveries by state (never the secret)."""
    table(("id", "url", "events", "added", "by", "delivered", "due", "given up"),
          [(h.id, h.url, h.events, utc(h.created_at), h.created_by, counts.get("delivered", 0), counts.get("due", 0),
            counts.get("given_up", 0)) for h, counts in in_store(obj, webhooks.listing)])


@webhook.command("remove")
@click.argument("webhook_id", type=click.IntRange(1))
@click.pass_obj
def webhook_remove(obj, webhook_id):
    """Stop a webhook: nothing more is queued or sent to it."""
    in_store(obj, lambda s, actor: webhooks.remove(s, actor, webhook_id))
    click.echo("webhook %d removed" % webhook_id)

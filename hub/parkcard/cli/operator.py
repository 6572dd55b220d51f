"""`parkcard operator add|list|roles|passwd|disable|enable`: operator accounts (parkcard.services.operators)."""

import sys

import click

from parkcard.bounds import MERCHANT_ID, BoundParam
from parkcard.cli.common import in_store, table, utc
from parkcard.services import operators
from parkcard.services.privileges import ROLES


def _new_password(username, from_stdin):
    """The new password: one line of standard input (--password-stdin), else asked twice at the terminal."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("new password for %s" % username, hide_input=True, confirmation_prompt=True, err=True)


_ROLE = click.option("--role", "roles", multiple=True, required=True, type=click.Choice(ROLES),
                     help="what the operator does (repeat for several)")
_STDIN = click.option("--password-stdin", is_flag=True, help="read the password from standard input (scripts)")


@click.group("operator")
def operator():
    """Operator accounts: who works the desk, finance, the terminals and the park, with which roles."""


@operator.command("add")
@click.argument("username")
@_ROLE
@click.option("--name", "display_name", default=None, help="the operator's full name, as screens show it")
@click.option("--merchant", "merchant_id", type=BoundParam(MERCHANT_ID), default=None,
              help="a merchant login (role merchant): the merchant whose sales it sees")
@_STDIN
@click.pass_obj
def operator_add(obj, username, roles, display_name, merchant_id, password_stdin):
    """Create an operator account; the password is asked for (at least 10 characters)."""
    password = _new_password(username, password_stdin)
    in_store(obj, lambda s, actor: operators.create_operator(s, actor, username, password, roles, display_name,
                                                             merchant_id), create=True)
    click.echo("operator %s created with the role%s %s" % (username.strip().lower(), "s" if len(roles) > 1 else "",
                                                           ", ".join(r for r in ROLES if r in roles)))


@operator.command("list")
@click.pass_obj
def operator_list(obj):
    """Every operator account: roles, merchant, state, last login."""
    table(("login", "name", "roles", "merchant", "state", "created", "last login"),
          [(o.username, o.display_name or "", " ".join(o.roles.split()), o.merchant_id or "",
            "active" if o.active else "disabled", utc(o.created_at), utc(o.last_login_at) or "never")
           for o in in_store(obj, operators.list_operators)])


@operator.command("roles")
@click.argument("username")
@_ROLE
@click.pass_obj
def operator_roles(obj, username, roles):
    """Give an operator exactly these roles."""
    given = in_store(obj, lambda s, actor: operators.set_roles(s, actor, username, roles))
    click.echo("operator %s now has the roles %s" % (username.strip().lower(), ", ".join(given)))


@operator.command("passwd")
@click.argument("username")
@_STDIN
@click.pass_obj
def operator_passwd(obj, username, password_stdin):
    """Set an operator's password (a reset: the old one is not needed)."""
    password = _new_password(username, password_stdin)
    in_store(obj, lambda s, actor: operators.set_password(s, actor, username, password))
    click.echo("password of %s changed" % username.strip().lower())


def _switch(obj, username, service, now):
    """Run disable_operator or enable_operator and say whether anything changed."""
    name = username.strip().lower()
    if in_store(obj, lambda s, actor: service(s, actor, username)):
        click.echo("operator %s %s" % (name, now))
    else:
        click.echo("operator %s was %s already: nothing changed" % (name, now))


@operator.command("disable")
@click.argument("username")
@click.pass_obj
def operator_disable(obj, username):
    """Disable an account: it may not log in any more (its name stays in the audit log)."""
    _switch(obj, username, operators.disable_operator, "disabled")


@operator.command("enable")
@click.argument("username")
@click.pass_obj
def operator_enable(obj, username):
    """Enable a disabled account again."""
    _switch(obj, username, operators.enable_operator, "enabled")

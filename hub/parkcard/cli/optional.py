"""Commands that other distributions add to `parkcard`, found through the entry point group `parkcard.commands`.

The product installs none of them: `parkcard demo` comes with the development
kit (devkit/, distribution parkcard-devkit), which registers it there. A command
is loaded only when it is used, so a development kit that fails to import cannot
stop `parkcard up`.
"""

from importlib.metadata import entry_points

import click

from parkcard.cli.common import UserError

COMMANDS_GROUP = "parkcard.commands"
# The commands a person may know from the README, and where they come from when not installed.
KNOWN_ELSEWHERE = {
    "demo": "ParkCard's development kit (parkcard-devkit), which is not installed: run ./setup.sh in a "
            "checkout of the repository, or pip install -e devkit there",
}


def registered_commands():
    """{name: entry point} of the commands installed distributions register for `parkcard`."""
    return {ep.name: ep for ep in entry_points(group=COMMANDS_GROUP)}


class CommandsGroup(click.Group):
    """A click group that also serves the commands registered by other distributions, loaded when used."""

    def __init__(self, *args, find=registered_commands, **kwargs):
        """find: returns {name: entry point} of the registered commands."""
        super().__init__(*args, **kwargs)
        self._find = find

    def list_commands(self, ctx):
        """Its own commands, the registered ones and the known ones not installed (hidden), sorted."""
        return sorted(set(self.commands) | set(self._find()) | set(KNOWN_ELSEWHERE))

    def get_command(self, ctx, name):
        """Its own command, else a registered one (loaded now), else one that says where it comes from."""
        if name not in self.commands:
            found = self._find().get(name)
            if found is not None:
                self.add_command(found.load(), name)
            elif name in KNOWN_ELSEWHERE:
                return _not_installed(name, KNOWN_ELSEWHERE[name])
        return self.commands.get(name)


def _not_installed(name, where):
    # Takes any arguments and options (even --help) so that every use of the command gets the one line.
    @click.command(name, hidden=True, add_help_option=False,
                   context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
    def command():
        raise UserError("`parkcard %s` comes with %s" % (name, where))

    return command

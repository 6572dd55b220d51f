"""The gate role: entry and exit with tickets (DESIGN.md). Tickets are not on the terminal yet, so a gate
says so instead of letting anyone through; this module is where ticket checks will live."""

from terminal.app import Role as _Role


class Role(_Role):
    """A placeholder that refuses to serve, visibly."""

    async def serve(self, cfg):
        """Say the gate is not served yet."""
        self.app.ui.message("Role gate", "not served here")
        await self.app.poll()

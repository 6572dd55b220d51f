"""Every business operation, once: the CLI, the running hub (and later the web app and API) call these."""

"""The web app's pages, one module per page group; each route calls one service as the operator."""

"""The hub's HTTP surface: /api/v1 (JSON, OpenAPI) and /metrics, served by the hub process on its own loop.

`app.py` builds the FastAPI application over a running Hub, `routes.py` holds
the thin routers (one service call each), `server.py` runs uvicorn as one of
the hub's tasks, `metrics.py` the Prometheus registry of the hub's own.
"""

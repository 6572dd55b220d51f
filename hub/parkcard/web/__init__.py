"""The operator web app: server-rendered pages over parkcard.services, served beside /api/v1 by the hub itself.

Every page and action runs one service as the logged-in operator's Actor (the
service checks the privilege and writes the audit entry); the live fleet view
streams over Server-Sent Events, woken by what the hub commits. Templates,
static files and message catalogs (English, 简体中文) ship in this package:
nothing is loaded from the internet.
"""

"""ASGI entry point for servers: ``granian --interface asgi gateway.api.asgi:app``."""

from gateway.api.app import create_app

app = create_app()

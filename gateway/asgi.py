"""ASGI entry point for servers: ``granian --interface asgi gateway.asgi:app``."""

from gateway.app import create_app

app = create_app()

"""The HTTP layer: app factory and plugins, controllers, auth, error mapping, wire types, SSE.

Nothing imports this package but the command line (``gateway.cli``) and ASGI servers
(``gateway.api.asgi:app``).
"""

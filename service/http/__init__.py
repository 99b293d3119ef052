"""The HTTP layer: app factory, routes, middleware, auth, wire schemas (API.md)."""

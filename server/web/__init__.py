"""The HTTP surface: middleware, routes, handlers and static pages."""

"""The HTTP front: the GraphQL endpoint, health check and the dashboard."""

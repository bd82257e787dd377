"""Persistence: the Tortoise models, the database configuration and the migrations."""

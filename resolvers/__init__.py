"""The operations of the service as plain async functions on the models; every front end calls these."""

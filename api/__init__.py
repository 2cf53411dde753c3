"""The FastAPI service (issue #3). Not built yet."""

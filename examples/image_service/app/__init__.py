"""The image-generation service (seed 000): FastAPI endpoints in front of Celery tasks."""

"""BookReader AI's backend (seed 004): the parts that run on Celery."""

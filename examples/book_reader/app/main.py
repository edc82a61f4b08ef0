"""The API: ``uvicorn app.main:app``. Only the admin part that drives Celery is here."""

from fastapi import FastAPI

from app.api import admin

app = FastAPI(title="BookReader AI")
app.include_router(admin.router, prefix="/api/v1")

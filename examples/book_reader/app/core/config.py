"""Settings from the environment (the real backend uses pydantic-settings; the names are the same)."""

import os


class Settings:
    # Unset: celeriac's embedded SQLite file (the seed runs on Redis: redis://redis:6379/0).
    REDIS_URL: str | None = os.getenv("REDIS_URL")
    # The application database (SQLite here; PostgreSQL in the seed).
    DATABASE_PATH: str = os.getenv("BOOKREADER_DB", "bookreader.db")
    # The bearer token the admin endpoints require.
    ADMIN_TOKEN: str = os.getenv("BOOKREADER_ADMIN_TOKEN", "change-me")


settings = Settings()

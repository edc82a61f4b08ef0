"""The image service's background work: renders, cloud uploads, email, chat history."""

import logging
import os
import sqlite3
import time

from app import stable_diffusion
from app.celery_app import celery_app

logger = logging.getLogger(__name__)


@celery_app.task(bind=True, name="app.tasks.generate_image_task", max_retries=3, default_retry_delay=60)
def generate_image_task(self, prompt: str, character: str, steps: int = 35, user_id: str | None = None):
    """Render an image, upload it and record it in the chat history.

    Reports PROGRESS with a message and a percentage the status endpoint shows; retries 3
    times, 60 s apart, when the render server is unreachable.
    """
    def report(message: str, progress: int) -> None:
        self.update_state(state="PROGRESS", meta={"message": message, "progress": progress})

    report("Подготовка к генерации", 5)
    try:
        image = stable_diffusion.render(
            prompt, character, steps,
            # Sampling is most of the time: it moves the bar from 10 % to 65 %.
            on_step=lambda step: report(f"Генерация изображения: шаг {step}/{steps}", 10 + 55 * step // steps),
        )
    except stable_diffusion.StableDiffusionUnavailable as exc:
        raise self.retry(exc=exc)

    filename = f"generated_{int(time.time() * 1000)}.png"
    report("Загрузка изображения в облако", 70)
    cloud_url = stable_diffusion.upload(filename, image)

    report("Сохранение истории чата", 90)
    # The history write can wait: it goes to low_priority, not the render's queue.
    save_chat_history_task.delay(user_id, character, prompt, cloud_url)

    return {
        "success": True,
        "image_url": cloud_url,
        "cloud_url": cloud_url,
        "filename": filename,
        "character": character,
    }


@celery_app.task(name="app.tasks.upload_to_cloud_task", max_retries=3, default_retry_delay=60,
                 autoretry_for=(ConnectionError,))
def upload_to_cloud_task(filename: str, data: str):
    """Upload a file given as text (re-uploads after a bucket outage)."""
    return {"cloud_url": stable_diffusion.upload(filename, data.encode())}


@celery_app.task(name="app.tasks.send_email_task", max_retries=3, default_retry_delay=60,
                 autoretry_for=(ConnectionError,))
def send_email_task(email_to: str, subject: str, body: str):
    """Send an email; the SMTP part is left out, the example logs it."""
    logger.info("email to %s: %s", email_to, subject)
    return {"status": "sent", "email": email_to}


@celery_app.task(name="app.tasks.save_chat_history_task")
def save_chat_history_task(user_id: str | None, character: str, prompt: str, image_url: str):
    """Append one generated image to the chat history table (APP_DATABASE_URL)."""
    with sqlite3.connect(database_path()) as db:
        db.execute("CREATE TABLE IF NOT EXISTS chat_history (user_id TEXT, character TEXT, prompt TEXT,"
                   " image_url TEXT, created_at REAL)")
        db.execute("INSERT INTO chat_history VALUES (?, ?, ?, ?, ?)",
                   (user_id, character, prompt, image_url, time.time()))
    db.close()  # the with block commits; it does not close
    return {"saved": True}


def database_path() -> str:
    """The SQLite file behind APP_DATABASE_URL (the seed's sqlite+aiosqlite:///./sql_app.db)."""
    url = os.getenv("APP_DATABASE_URL", "sqlite+aiosqlite:///./sql_app.db")
    return url.split(":///", 1)[1]

"""AI processing: is a channel post a car for sale, and which car, for how much (CPU-heavy)."""

import logging
import os
import re
import time

from cars_bot.celery_app import app
from cars_bot.database import get_post, session
from celeriac import SoftTimeLimitExceeded

logger = logging.getLogger(__name__)

BRANDS = ("Toyota", "BMW", "Mercedes", "Audi", "Kia", "Hyundai", "Lada", "Volkswagen", "Nissan", "Mazda")
_YEAR = re.compile(r"\b(19[89]\d|20[0-4]\d)\b")
_PRICE = re.compile(r"(\d[\d\s]{3,})\s*(?:₽|руб|rub)", re.IGNORECASE)  # noqa: RUF001 (Russian "rub")


@app.task(bind=True, autoretry_for=(ConnectionError,), retry_backoff=True, retry_backoff_max=600, max_retries=3)
def process_post_task(self, post_id: int):
    """Classify a post and extract brand, year and price; stops cleanly at the soft time limit."""
    logger.info("processing post %s", post_id)
    with session() as conn:
        text = get_post(conn, post_id)["text"]
    try:
        # Stands for the model's inference time (CARS_BOT_AI_SECONDS, 2 s by default).
        time.sleep(float(os.getenv("CARS_BOT_AI_SECONDS", "2")))
        brand = next((b for b in BRANDS if b.lower() in text.lower()), None)
        year = _YEAR.search(text)
        price = _PRICE.search(text)
    except SoftTimeLimitExceeded:
        # The soft limit is the task's chance to leave the post in a known state before the
        # hard limit kills the process; it is picked up again by the next run.
        logger.warning("post %s: AI processing ran out of time", post_id)
        with session() as conn:
            conn.execute("UPDATE posts SET status = 'timeout' WHERE id = ?", (post_id,))
        return {"post_id": post_id, "status": "timeout"}

    is_car_ad = brand is not None and price is not None
    fields = {
        "brand": brand,
        "year": int(year.group(1)) if year else None,
        "price": int(re.sub(r"\s", "", price.group(1))) if price else None,
    }
    with session() as conn:
        conn.execute("UPDATE posts SET status = ?, brand = ?, year = ?, price = ? WHERE id = ?",
                     ("car_ad" if is_car_ad else "rejected", fields["brand"], fields["year"], fields["price"],
                      post_id))
    return {"post_id": post_id, "is_car_ad": is_car_ad, **fields}

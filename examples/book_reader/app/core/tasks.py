"""Heavy and normal work: parsing books, generating illustrations."""

import asyncio
import logging
import os
import time

from app.core.celery_app import celery_app

logger = logging.getLogger(__name__)


@celery_app.task(name="app.core.tasks.process_book_task", bind=True, max_retries=3, default_retry_delay=60)
def process_book_task(self, book_id: str):
    """Parse a book and extract the passages worth illustrating (the NLP part is left out)."""
    logger.info(f"Task started: {self.request.id}")
    started = time.monotonic()
    result = asyncio.run(_process_book(book_id))
    logger.info(f"Processed book {book_id} in {(time.monotonic() - started) * 1000:.0f}ms")
    return result


async def _process_book(book_id: str) -> dict:
    # Stands for the parsing and NLP time (BOOKREADER_BOOK_SECONDS, 5 s by default).
    await asyncio.sleep(float(os.getenv("BOOKREADER_BOOK_SECONDS", "5")))
    return {"book_id": book_id, "chapters": 12, "descriptions": 87}


@celery_app.task(name="app.core.tasks.generate_image_task", rate_limit="10/m")
def generate_image_task(description_id: str):
    """Illustrate one description; the image API allows 10 calls a minute, for all workers together."""
    # Stands for the image API's response time (BOOKREADER_IMAGE_SECONDS, 1 s by default).
    time.sleep(float(os.getenv("BOOKREADER_IMAGE_SECONDS", "1")))
    return {"description_id": description_id, "image_url": f"https://images.example.com/{description_id}.png",
            "generated_at": time.time()}

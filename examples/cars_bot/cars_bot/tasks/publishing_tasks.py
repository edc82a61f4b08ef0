"""Publishing classified posts to the bot's Telegram channel."""

import json
import logging
import os
import time

from cars_bot.celery_app import app
from cars_bot.database import get_post, session

logger = logging.getLogger(__name__)


class TelegramUnavailable(ConnectionError):
    """The Bot API did not answer; worth retrying."""


def send_to_channel(text: str) -> int:
    """A stand-in for the Bot API's sendMessage: appends to CARS_BOT_CHANNEL_DIR/channel.jsonl.

    An ``outage`` file in that directory holding N makes the next N calls fail, as a Bot API
    outage would (it is how the retry policy can be watched at work).
    """
    directory = os.getenv("CARS_BOT_CHANNEL_DIR", "channel")
    os.makedirs(directory, exist_ok=True)
    outage = os.path.join(directory, "outage")
    if os.path.exists(outage):
        with open(outage) as f:
            left = int(f.read() or 0)
        if left > 0:
            with open(outage, "w") as f:
                f.write(str(left - 1))
            raise TelegramUnavailable("Telegram Bot API: 502 Bad Gateway")
    with open(os.path.join(directory, "channel.jsonl"), "a", encoding="utf-8") as f:
        f.write(json.dumps({"text": text, "time": time.time()}, ensure_ascii=False) + "\n")
    return int(time.time() * 1000)


@app.task(bind=True, autoretry_for=(ConnectionError,), retry_backoff=True, retry_backoff_max=600, max_retries=5)
def publish_post_task(self, post_id: int):
    """Publish a post the AI accepted; a Bot API outage is retried with exponential backoff."""
    with session() as conn:
        post = get_post(conn, post_id)
    if post["status"] != "car_ad":
        raise ValueError(f"post {post_id} is {post['status']!r}, not a car ad: nothing to publish")
    text = f"{post['brand']} {post['year'] or ''} — {post['price']:,} ₽".replace(",", " ")
    message_id = send_to_channel(text)
    with session() as conn:
        conn.execute("UPDATE posts SET status = 'published' WHERE id = ?", (post_id,))
    logger.info("post %s published as message %s", post_id, message_id)
    return {"post_id": post_id, "message_id": message_id, "text": text}

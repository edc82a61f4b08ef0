"""A stand-in for the Stable Diffusion API (APP_SD_API_URL in the seed) and the cloud bucket.

It takes as long as a render does (IMAGE_STEP_SECONDS per sampling step, 1 s by default, so the
seed's 35 steps take about 35 s), so the example shows the same progress a real render does
without a GPU. The "image" is a placeholder; the upload returns the URL the bucket would give.
"""

import os
import time
from collections.abc import Callable

MAX_STEPS = 150
CHARACTERS = ("anna", "maria", "kate")
BUCKET_URL = os.getenv("APP_CLOUD_BUCKET_URL", "https://storage.yandexcloud.net/generated-images")


class StableDiffusionUnavailable(ConnectionError):
    """The render server did not answer: worth retrying later."""


def render(prompt: str, character: str, steps: int, on_step: Callable[[int], None]) -> bytes:
    """Render ``prompt`` for ``character``; ``on_step(i)`` after each sampling step."""
    if not prompt.strip():
        raise ValueError("prompt is empty")
    if character not in CHARACTERS:
        raise ValueError(f"unknown character {character!r}; known: {', '.join(CHARACTERS)}")
    if not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be between 1 and {MAX_STEPS}, got {steps}")
    step_seconds = float(os.getenv("IMAGE_STEP_SECONDS", "1"))
    for step in range(1, steps + 1):
        time.sleep(step_seconds)
        on_step(step)
    return f"{character}: {prompt} ({steps} steps)".encode()


def upload(filename: str, data: bytes) -> str:
    """Put the image in the bucket; returns its public URL."""
    time.sleep(float(os.getenv("IMAGE_UPLOAD_SECONDS", "0.5")))
    return f"{BUCKET_URL}/{filename}"


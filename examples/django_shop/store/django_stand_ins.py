"""The three pieces of Django the tasks use, reduced so the example runs without Django.

- ``settings``: what ``django.conf.settings`` gives, the module DJANGO_SETTINGS_MODULE names.
- ``connection()``: the database in DATABASES['default'] (SQLite), with the store's tables.
- ``send_mail()``: ``django.core.mail.send_mail``, through the file-based backend: one JSON line
  per message in EMAIL_FILE_PATH/messages.jsonl.
"""

import importlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, customer_email TEXT, seller_email TEXT,
                                   total REAL, status TEXT, created_at REAL);
CREATE TABLE IF NOT EXISTS carts (id INTEGER PRIMARY KEY, owner_email TEXT, updated_at REAL);
CREATE TABLE IF NOT EXISTS pending_emails (id INTEGER PRIMARY KEY, to_email TEXT, subject TEXT, body TEXT,
                                           sent_at REAL);
CREATE TABLE IF NOT EXISTS payments (id TEXT PRIMARY KEY, order_id INTEGER, gateway_status TEXT);
"""


def settings() -> ModuleType:
    return importlib.import_module(os.environ.get('DJANGO_SETTINGS_MODULE', 'shops.settings'))


@contextmanager
def connection() -> Iterator[sqlite3.Connection]:
    """A transaction on the shop's database: committed on success, rolled back on error."""
    conn = sqlite3.connect(settings().DATABASES['default']['NAME'], timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        conn.executescript(SCHEMA)
        with conn:
            yield conn
    finally:
        conn.close()


def send_mail(subject: str, message: str, from_email: str | None, recipient_list: list[str]) -> int:
    directory = settings().EMAIL_FILE_PATH
    os.makedirs(directory, exist_ok=True)
    record = {'subject': subject, 'message': message, 'from': from_email or settings().DEFAULT_FROM_EMAIL,
              'to': list(recipient_list), 'time': time.time()}
    with open(os.path.join(directory, 'messages.jsonl'), 'a', encoding='utf-8') as f:
        f.write(json.dumps(record, ensure_ascii=False) + '\n')  # one short append: lines never interleave
    return 1

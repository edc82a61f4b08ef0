"""The shop's "store" Django app: orders, carts, payments, and their background tasks."""

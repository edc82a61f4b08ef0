"""What the shop's views do with the tasks, without the HTTP part (Django is not installed).

The seed's view::

    def create_order(request):
        # ... create the order ...
        send_order_confirmation.delay(order.id)
        return redirect('order_confirm', order_id=order.id)
"""

import time

from store.django_stand_ins import connection
from store.tasks import send_order_confirmation, send_review_reminder, send_seller_notification

REVIEW_REMINDER_DELAY = 7 * 24 * 3600  # a week after the order


def create_order(customer_email, seller_email, total):
    with connection() as conn:
        order_id = conn.execute(
            "INSERT INTO orders (customer_email, seller_email, total, status, created_at) VALUES (?, ?, ?, 'new', ?)",
            (customer_email, seller_email, total, time.time())).lastrowid

    # Mail goes out in the background: the customer is not kept waiting for SMTP.
    send_order_confirmation.delay(order_id)
    send_seller_notification.delay(order_id)
    # Delayed: the message waits in the broker for a week, not in a worker's memory.
    send_review_reminder.apply_async(args=[order_id], countdown=REVIEW_REMINDER_DELAY)
    return order_id

"""A newsletter: render one issue per subscriber in parallel, send each, then report.

    send_issue(issue)  = chord(group(render.s(issue, s) | send_email.s() for s in subscribers),
                               summarize.s(issue))
"""

from celeriac import chain, chord, current_task, group, shared_task
from celeriac.utils.log import get_task_logger

from ..ledger import record

logger = get_task_logger(__name__)

SUBSCRIBERS = ["ada@example.com", "grace@example.com", "linus@example.com", "bounce@example.com"]


class TemporaryMailError(Exception):
    pass


@shared_task
def render(issue, address):
    logger.info("rendering issue %s for %s", issue, address)
    return {"to": address, "body": f"Issue {issue} for {address}"}


@shared_task(bind=True, max_retries=3, default_retry_delay=0.2)
def send_email(self, message):
    if message["to"].startswith("bounce") and self.request.retries < 2:
        # The mail server's greylisting: accepted on the third try.
        raise self.retry(exc=TemporaryMailError(message["to"]))
    record("sent", to=message["to"], task=current_task.name, retries=self.request.retries)
    return message["to"]


@shared_task
def summarize(sent, issue):
    record("summary", issue=issue, sent=sorted(sent))
    return {"issue": issue, "sent": len(sent)}


@shared_task
def on_error(request, exc, traceback):
    record("errback", id=request.id, error=repr(exc))


@shared_task
def fail_loudly(reason):
    raise ValueError(reason)


def send_issue(issue, subscribers=SUBSCRIBERS):
    """What the admin's "send" button calls."""
    header = group(chain(render.s(issue, address), send_email.s()) for address in subscribers)
    return chord(header)(summarize.s(issue))

"""What the project's operators log: every task that starts and how each one ends."""

from celeriac.signals import task_failure, task_postrun, task_prerun, worker_ready

from .ledger import record


@worker_ready.connect
def announce(sender=None, **kwargs):
    record("worker_ready", hostname=getattr(sender, "hostname", None))


@task_prerun.connect
def started(sender=None, task_id=None, task=None, args=None, kwargs=None, **extra):
    record("prerun", task=task.name, id=task_id)


@task_postrun.connect
def ended(sender=None, task_id=None, task=None, retval=None, state=None, **extra):
    record("postrun", task=task.name, id=task_id, state=state)


@task_failure.connect
def failed(sender=None, task_id=None, exception=None, **extra):
    record("failure", task=sender.name, id=task_id, error=repr(exception))

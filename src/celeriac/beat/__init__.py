"""The periodic scheduler (beat): once per tick cluster-wide, no schedule file, changes at run time.

- :mod:`.entry`     one periodic job, checked from ``beat_schedule`` / ``add_periodic_task``
- :mod:`.store`     beat's keys in the broker: run-time entries, pauses, last ticks, tick claims
- :mod:`.schedule`  :class:`Schedule`, the cluster's schedule and the API to change it at run time
- :mod:`.scheduler` :class:`Scheduler`, the loop ``celeriac beat`` and ``worker -B`` run

Any number of schedulers may run against one broker: each tick of each entry is claimed in the
broker by exactly one of them before it is sent. Runs missed while no scheduler was up follow
the entry's ``missed`` policy: ``'once'`` (default, ``beat_missed_policy``) sends one run for
them all, ``'skip'`` sends none.
"""

from .entry import MISSED_POLICIES, Entry
from .schedule import Schedule, app_zone
from .scheduler import Scheduler
from .store import LastRun

__all__ = ["MISSED_POLICIES", "Entry", "LastRun", "Schedule", "Scheduler", "app_zone"]

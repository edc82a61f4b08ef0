#!/usr/bin/env python
"""What one task costs a worker's pool process, in instructions, for two source trees.

    .venv/bin/python benchmarks/worker_cost.py --before /tmp/old [--after .] [--small 1000 --large 4000]

Timed drains on this shared machine swing by 20 % between runs of the same code, and even CPU
time moves by that much; the instructions a process executes do not. For each tree, on one
fresh redis-server: queue N no-op tasks (results stored, events on: the defaults), run
``celeriac worker -c 1`` under valgrind's callgrind (children traced) until every result is
stored, stop it, and read the pool process's instruction count. Doing it for a small and a
large N and dividing the difference by the difference in tasks leaves start-up and shutdown
out: what remains is the per-task path (fetch, decode, run, result, ack, events). Needs
``valgrind``; takes a few minutes (everything runs some fifty times slower under it).
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

from redis_server import start_redis  # noqa: E402


def pool_instructions(src: Path, url: str, tasks: int, out: Path) -> int:
    """Instructions the pool process of a worker from ``src`` executes draining ``tasks`` no-ops."""
    import redis

    client = redis.Redis.from_url(url)
    client.flushall()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src / "src"), str(HERE)]), "BENCH_BROKER_URL": url}
    subprocess.run([sys.executable, "-c", "from celeriac_tasks import app;"
                    f"app.send_many('bench.noop', [((), {{}})] * {tasks}); app.close()"], env=env, check=True)
    for old in glob.glob(str(out / "callgrind.out.*")):
        os.remove(old)
    worker = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--trace-children=yes", f"--callgrind-out-file={out}/callgrind.out.%p",
         sys.executable, "-m", "celeriac", "-A", "celeriac_tasks", "worker", "-c", "1", "-l", "warning",
         "-n", f"cost{tasks}@%h"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline and len(client.keys("celeriac-task-meta-*")) < tasks:
        time.sleep(1)
    worker.send_signal(signal.SIGTERM)
    worker.wait(600)
    client.close()
    counts = {}
    for path in glob.glob(str(out / "callgrind.out.*")):
        pid = int(path.rsplit(".", 1)[1])
        found = re.search(r"^(?:summary|totals): (\d+)", Path(path).read_text(), re.M)
        counts[pid] = int(found.group(1)) if found else 0
    pool = [n for pid, n in counts.items() if pid != worker.pid]
    if not pool:
        raise SystemExit("worker_cost: no pool process profile was written (is valgrind installed?)")
    return max(pool)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, required=True, help="an older checkout (its src/ is used)")
    parser.add_argument("--after", type=Path, default=ROOT, help="the checkout to compare (default: this one)")
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=4000)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("worker_cost: valgrind is missing (apt-get install -y valgrind)")
    server = start_redis()
    url = f"redis://127.0.0.1:{server.port}/0"
    per_task: dict[str, float] = {}
    try:
        with tempfile.TemporaryDirectory() as scratch:
            for name, tree in (("before", args.before.resolve()), ("after", args.after.resolve())):
                small = pool_instructions(tree, url, args.small, Path(scratch))
                large = pool_instructions(tree, url, args.large, Path(scratch))
                per_task[name] = (large - small) / (args.large - args.small)
                print(f"{name:6} {tree}: {per_task[name]:,.0f} instructions per task", flush=True)
    finally:
        server.stop()
    print(f"after/before {per_task['after'] / per_task['before']:.3f}")


if __name__ == "__main__":
    main()

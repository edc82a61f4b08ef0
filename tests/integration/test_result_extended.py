"""What a worker records as Celery's does, read by another process: result_extended's name,
args, kwargs, worker and queue; a task's ``throws`` logged as expected, without a traceback."""

from __future__ import annotations

import sys
from pathlib import Path

from celeriac.testing import worker_process

APPS = str(Path(__file__).parent.parent / "apps")
if APPS not in sys.path:
    sys.path.insert(0, APPS)

import extendedapp  # noqa: E402


def test_the_stored_result_names_its_queue_args_and_worker(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ext.db'}"
    app = extendedapp.app
    app.conf.broker_url = url
    app.conf.result_backend = url
    app._reset_connections()
    proc = worker_process("extendedapp", "-c", "1", "-n", "ext@%h", "-Q", "celery,reports", broker_url=url,
                          env={"CELERIAC_RESULT_BACKEND": url}, log_path=str(tmp_path / "worker.log"),
                          pythonpath=[APPS])
    try:
        proc.wait_ready()
        result = extendedapp.add.apply_async((2, 3), {}, queue="reports")
        assert result.get(timeout=20) == 5
        fresh = app.AsyncResult(result.id)
        assert (fresh.name, fresh.args, fresh.kwargs, fresh.queue) == ("extendedapp.add", [2, 3], {}, "reports")
        assert fresh.worker is not None and fresh.worker.startswith("ext@")
        expected, unexpected = extendedapp.lookup.delay("sku-1"), extendedapp.broken.delay("sku-2")
        for failed in (expected, unexpected):
            assert failed.get(timeout=20, propagate=False) is not None and failed.state == "FAILURE"
        log = proc.log()
        (line,) = [li for li in log.splitlines() if expected.id in li and "raised" in li]
        assert "INFO" in line and "raised expected: KeyError('sku-1')" in line
        after = log.split(line, 1)[1].splitlines()
        assert not after or "Traceback" not in after[0]
        assert f"Task extendedapp.broken[{unexpected.id}] raised unexpected" in log
    finally:
        proc.kill()
        app.close()

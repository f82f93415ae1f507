"""Job progress that other sessions can read while the import runs.

PostgreSQL: Django gives every thread its own database connection, so the reporter writes progress from a
thread of its own: its UPDATE commits at once (autocommit) while the import transaction in the calling thread is
still open. Reports are coalesced (only the newest waits), and ``flush`` waits for the last one, so a stale report
never lands after the job finished.

SQLite has one writer at a time. A second connection's UPDATE waits for the import transaction's write lock, and
that transaction waits in ``flush`` for the UPDATE: the two stalled each other until the busy timeout ran out
("database is locked"). So on SQLite there is no thread: progress is written in the calling thread between
transactions, and progress reported inside the write transaction only reaches the callback (the command line's
progress bar).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.db import connection, connections

from config.db import connections_drop_broken
from jobs.models import Job
from jobs.services import job_progress

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int, dict[str, int]], None]


class ProgressReporter:
    def __init__(self, *, job: Job, callback: ProgressCallback | None = None):
        self.job = Job(pk=job.pk)  # a copy: job_progress sets fields on it (from another thread on PostgreSQL)
        self.callback = callback
        self.total = 0
        self.threaded = connection.vendor == "postgresql"
        self._pending: tuple[int, int, dict[str, int]] | None = None
        self._busy = False
        self._closed = False
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        if self.threaded:
            self._thread = threading.Thread(target=self._run, name=f"import-progress-{job.pk}", daemon=True)
            self._thread.start()

    def report(self, *, done: int, total: int, counts: dict[str, int], in_transaction: bool = False) -> None:
        total = max(total, done)
        self.total = total
        if self.callback is not None:
            self.callback(done, total, dict(counts))
        if not self.threaded:
            if not in_transaction:
                self._write((done, total, dict(counts)))
            return
        with self._cond:
            self._pending = (done, total, dict(counts))
            self._cond.notify_all()

    def flush(self) -> None:
        """Wait until the newest report is in the database."""
        if self._thread is None:
            return
        with self._cond:
            while (self._pending is not None or self._busy) and self._thread.is_alive():
                self._cond.wait(timeout=1)

    def close(self) -> None:
        if self._thread is None:
            return
        self.flush()
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=30)

    def _write(self, report: tuple[int, int, dict[str, int]]) -> None:
        done, total, counts = report
        try:
            job_progress(job=self.job, done=done, total=total, counts=counts)
        except Exception:  # progress is best effort; the import itself goes on
            logger.warning("could not record progress of job %s", self.job.pk, exc_info=True)
            if self.threaded:
                connections_drop_broken()  # a dropped connection of this thread is replaced at the next report

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    while self._pending is None and not self._closed:
                        self._cond.wait()
                    if self._pending is None and self._closed:
                        return
                    report = self._pending
                    self._pending = None
                    self._busy = True
                assert report is not None
                try:
                    self._write(report)
                finally:
                    with self._cond:
                        self._busy = False
                        self._cond.notify_all()
        finally:
            connections.close_all()  # this thread's connections only

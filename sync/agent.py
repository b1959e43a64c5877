"""The edge sync agent: the daemon's jobs that talk to central, on an enrolled box only.

Four jobs on apscheduler's ``AsyncIOScheduler`` in the daemon's event loop, each at its own
interval (``[sync]``), each first run at start:

- ``policy``: pull the signed policy (``sync.policy_store``), apply it or refuse it;
- ``usage``: compact the outbox if it is over its bound, then send its batches in order;
- ``checkpoints``: send the audit checkpoints written since the last acknowledged one;
- ``heartbeat``: report the policy version and status, the outbox, the model, the audit head
  and the audit public key (which central verifies checkpoints with).

A job that fails (central unreachable, a 5xx, a refused call) is retried after an exponential
backoff with jitter (``backoff_initial_seconds`` doubled per consecutive failure, up to
``backoff_max_seconds``, each delay drawn between half and all of that) instead of at its
interval. ``run_now`` (``appliance sync now``) runs every job at once. Blocking work (SQLite,
python-tuf) runs in worker threads; each job holds its own lock so a scheduled run and a
``sync now`` never overlap. What ``appliance sync status`` shows is written to ``sync_state``
in ``state.db`` after every run (``sync.status``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import msgspec
# apscheduler 3 ships no type information.
from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.policy import PolicyConfig, PolicyError, PolicyHolder
from sync.client import CentralClient, CentralError, CentralRefused
from sync.config import SyncConfig
from sync.enrollment import (Enrollment, EnrollmentError, audit_public_key, load_box_key,
                             load_enrollment)
from sync.outbox import Batch, Outbox, last_checkpoint
from sync.policy_store import Outcome, pull_policy, store_last_known_good

log = logging.getLogger("sync.agent")

JOBS = ("policy", "usage", "checkpoints", "heartbeat")
#: Batches one run of a job sends at most before it yields to the next interval.
MAX_BATCHES_PER_RUN = 100


class Host(Protocol):
    """What the agent needs from the daemon (``appliance.runtime.Runtime``)."""

    policies: PolicyHolder

    def check_policy(self, policy: PolicyConfig) -> None: ...

    def apply_policy(self, policy: PolicyConfig, source: str) -> None: ...

    async def record_admin_event(self, kind: str, actor: str, **detail: str) -> None: ...


class SyncAgent:
    def __init__(self, host: Host, data_dir: Path, enrollment: Enrollment,
                 key: Ed25519PrivateKey, config: SyncConfig, *, model: str | None = None,
                 hardware: Callable[[], dict[str, Any]] | None = None,
                 version: str = "") -> None:
        self.host = host
        self.data_dir = data_dir
        self.enrollment = enrollment
        self.key = key
        self.config = config
        self.model = model
        self._describe_hardware = hardware
        self._hardware: dict[str, Any] | None = None
        #: Sent in every heartbeat: central registers it if enrollment did not.
        self._audit_key: str | None = None
        self.version = version
        self.outbox = Outbox(data_dir / "state.db", data_dir / "audit", config.outbox_max_rows)
        self.client = CentralClient(enrollment.central_url, enrollment.box_id, key,
                                    config.timeout_seconds)
        self.scheduler: AsyncIOScheduler | None = None
        self._locks = {name: asyncio.Lock() for name in JOBS}
        self._running: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self._failures = dict.fromkeys(JOBS, 0)
        self._jobs: dict[str, Callable[[], Awaitable[None]]] = {
            "policy": self.pull_policy, "usage": self.push_usage,
            "checkpoints": self.push_checkpoints, "heartbeat": self.heartbeat}

    # lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Schedule the jobs (in the running event loop); each runs once right away."""
        intervals = {"policy": self.config.policy_interval_seconds,
                     "usage": self.config.usage_interval_seconds,
                     "checkpoints": self.config.checkpoint_interval_seconds,
                     "heartbeat": self.config.heartbeat_interval_seconds}
        # apscheduler logs two INFO lines per run of every job; its warnings still show.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        now = datetime.now(UTC)
        for name, seconds in intervals.items():
            self.scheduler.add_job(self.run_job, IntervalTrigger(seconds=seconds), args=[name],
                                   id=name, name=f"sync {name}", next_run_time=now,
                                   coalesce=True, max_instances=1, misfire_grace_time=None)
        self.scheduler.start()
        log.info("sync agent started: box %s, central %s", self.enrollment.box_id,
                 self.enrollment.central_url)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop scheduling, let running jobs finish for up to ``grace`` seconds, then cancel
        them (a batch cut off is sent again, under the same id, at the next start), close the
        client."""
        self._stopping = True
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
        if self._running:
            await asyncio.wait(set(self._running), timeout=grace)
        for task in set(self._running):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.client.close()
        await asyncio.to_thread(self.outbox.close)

    async def run_now(self) -> dict[str, str | None]:
        """Run every job now, one after the other; the error of each, None when it worked."""
        return {name: await self.run_job(name) for name in JOBS}

    # one run, with its bookkeeping ---------------------------------------------------------

    async def run_job(self, name: str) -> str | None:
        """Run one job (waiting for a run of it already going); its error, or None."""
        task = asyncio.current_task()
        assert task is not None
        if self._stopping:
            return "the sync agent is stopping"
        self._running.add(task)
        try:
            return await self._run_locked(name)
        except asyncio.CancelledError:
            if self._stopping:  # cut off by ``stop``: nothing more to do or to report
                return "the sync agent is stopping"
            raise
        finally:
            self._running.discard(task)

    async def _run_locked(self, name: str) -> str | None:
        async with self._locks[name]:
            error: str | None = None
            contact = True
            try:
                await self._jobs[name]()
            except CentralError as exc:
                error, contact = str(exc), isinstance(exc, CentralRefused)
            except Exception as exc:  # noqa: BLE001 - a job must not stop the agent
                log.exception("sync %s failed", name)
                error, contact = f"{exc.__class__.__name__}: {exc}", False
            now = time.time()
            state: dict[str, str | int | float | None] = {}
            if error is None:
                self._failures[name] = 0
                state.update({f"job.{name}.last_success": now, f"job.{name}.last_error": None})
            else:
                self._failures[name] += 1
                log.warning("sync %s failed (%d in a row): %s", name, self._failures[name],
                            error)
                self._retry_later(name, self._backoff(self._failures[name]))
                state.update({f"job.{name}.last_error": error,
                              f"job.{name}.last_error_at": now, "last_error": error,
                              "last_error_at": now})
            if contact:
                state["last_contact"] = now
            state[f"job.{name}.failures"] = self._failures[name]
            state[f"job.{name}.next_attempt"] = self._next_attempt(name)
            await asyncio.to_thread(self.outbox.set_state, state)
            return error

    def _backoff(self, failures: int) -> float:
        ceiling = min(self.config.backoff_max_seconds,
                      self.config.backoff_initial_seconds * 2 ** min(failures - 1, 60))
        return random.uniform(ceiling / 2, ceiling)

    def _retry_later(self, name: str, delay: float) -> None:
        if self.scheduler is None:
            return
        job = self.scheduler.get_job(name)
        if job is not None:
            job.modify(next_run_time=datetime.now(UTC) + timedelta(seconds=delay))

    def _next_attempt(self, name: str) -> float | None:
        job = self.scheduler.get_job(name) if self.scheduler is not None else None
        when = job.next_run_time if job is not None else None
        return when.timestamp() if when is not None else None

    # the jobs ------------------------------------------------------------------------------

    async def pull_policy(self) -> None:
        outcome = await asyncio.to_thread(
            pull_policy, self.data_dir, self.enrollment.central_url, self.enrollment.box_id,
            self.key, self.config.timeout_seconds)
        policy = outcome.policy
        if outcome.status == "applied" and policy is not None:
            try:
                self.host.check_policy(policy)
            except PolicyError as exc:
                outcome = Outcome("rejected", outcome.version, "invalid", str(exc))
            else:
                await asyncio.to_thread(store_last_known_good, self.data_dir, outcome.data)
                self.host.apply_policy(policy, f"central (policy version {outcome.version})")
        await self._record_policy(outcome)

    async def _record_policy(self, outcome: Outcome) -> None:
        """Status for ``sync status`` and the heartbeat; a ``policy_rejected`` audit event
        the first time a refusal is seen (not at every poll)."""
        running = self.host.policies.version
        if not outcome.refused:
            status = "none" if outcome.status == "none" else "applied"
            await asyncio.to_thread(self.outbox.set_state, {
                "policy.status": status, "policy.detail": None, "policy.reason": None,
                "policy.rejected": None, "policy.checked_at": time.time()})
            return
        detail = (f"{outcome.detail}; running the last known-good policy (version {running})")
        signature = f"{outcome.reason}|{outcome.version}|{outcome.detail}"
        seen = await asyncio.to_thread(self.outbox.get_state, "policy.rejected")
        await asyncio.to_thread(self.outbox.set_state, {
            "policy.status": outcome.status, "policy.reason": outcome.reason,
            "policy.detail": detail, "policy.rejected": signature,
            "policy.checked_at": time.time()})
        if seen != signature:
            log.warning("policy from central refused (%s): %s", outcome.reason, detail)
            await self.host.record_admin_event(
                "policy_rejected", "sync", reason=outcome.reason, detail=outcome.detail[:500],
                offered_version="" if outcome.version is None else str(outcome.version),
                running_version=str(running))

    async def push_usage(self) -> None:
        await asyncio.to_thread(self.outbox.compact)
        await self._push("/v1/usage", lambda: self.outbox.usage_batch(self.config.batch_size))

    async def push_checkpoints(self) -> None:
        await self._push("/v1/checkpoints",
                         lambda: self.outbox.checkpoint_batch(self.config.batch_size))

    async def _push(self, path: str, next_batch: Callable[[], Batch | None]) -> None:
        for _ in range(MAX_BATCHES_PER_RUN):
            batch = await asyncio.to_thread(next_batch)
            if batch is None:
                return
            answer = await self.client.post(path, batch.body)
            if answer.get("acked_seq") != batch.seq:
                raise CentralError(f"central acknowledged seq {answer.get('acked_seq')!r} for "
                                   f"{batch.stream} batch {batch.batch_id} (seq {batch.seq})")
            await asyncio.to_thread(self.outbox.acknowledge, batch)
            if answer.get("duplicate"):
                log.info("central had %s batch %s already (a replay after a restart)",
                         batch.stream, batch.batch_id)

    async def heartbeat(self) -> None:
        body = msgspec.json.encode(await asyncio.to_thread(self.heartbeat_body))
        answer = await self.client.post("/v1/heartbeat", body)
        server_time = answer.get("server_time")
        if isinstance(server_time, (int, float)):
            await asyncio.to_thread(self.outbox.set_state,
                                    {"clock_skew_seconds": round(time.time() - server_time, 3)})

    def heartbeat_body(self) -> dict[str, Any]:
        pending = self.outbox.pending_usage() + self.outbox.pending_checkpoints()
        status = self.outbox.get_state("policy.status") or "local"
        detail = self.outbox.get_state("policy.detail")
        head = last_checkpoint(self.data_dir / "audit")
        if self._hardware is None:  # probed once, at the first heartbeat
            try:
                self._hardware = self._describe_hardware() if self._describe_hardware else {}
            except Exception:  # noqa: BLE001 - a courtesy for the fleet view
                log.warning("could not describe the hardware for central", exc_info=True)
                self._hardware = {}
        if self._audit_key is None:  # read until found (the audit writer makes it at start)
            try:
                self._audit_key = audit_public_key(self.data_dir, create=False)
            except EnrollmentError:
                log.warning("could not read the audit public key for central", exc_info=True)
        return {"policy_version": self.host.policies.version,
                "policy_status": f"{status}: {detail}" if detail else status,
                "outbox_pending": pending, "model": self.model, "hardware": self._hardware,
                "audit_head": head, "appliance_version": self.version,
                "audit_public_key": self._audit_key}


def build_agent(host: Host, data_dir: Path, config: SyncConfig, *, model: str | None = None,
                hardware: Callable[[], dict[str, Any]] | None = None,
                version: str = "") -> SyncAgent | None:
    """The agent for an enrolled box with sync enabled, else None (a standalone box).
    ``EnrollmentError`` when the enrollment or the box's key cannot be read."""
    enrollment = load_enrollment(data_dir)
    if enrollment is None or not config.enabled:
        return None
    return SyncAgent(host, data_dir, enrollment, load_box_key(data_dir), config, model=model,
                     hardware=hardware, version=version)

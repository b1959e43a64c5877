"""What a running daemon holds: config, data directory, database, keys, models, pipeline.

Built in two phases so that nothing heavy happens at import time and the order is explicit:
``prepare`` (data directory, database, bootstrap key: fast, in the CLI process before the
server starts) and ``load_models`` (hardware profile, sha256 check, llama.cpp contexts,
embedding model: slow, run in the lifespan before the socket accepts requests).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from appliance.audit import AdminEvent, AuditLog, AuditUnavailable, admin_event
from appliance.classify import Classifier
from appliance.config import Config, ConfigError
from appliance.datadir import DataDir
from appliance.identity import IdentityStore
from appliance.keys import KeyStore
from appliance.limits import LimitStore, Limiter, TokenEstimator, UsageLedger
from appliance.pipeline import Accounting, Pipeline
from appliance.policy import (LEVELS, Owner, PolicyConfig, PolicyError, PolicyHolder,
                              load_policy)
from appliance.providers.base import Provider
from appliance.providers.local import LocalProvider
from appliance.providers.registry import build_providers
from appliance.health import ProviderHealth
from appliance.routing import Router, aliases_from_config
from appliance.state import StateDB
from hardware import Profile, choose_profile, probe, report_dict
from local_models.artifacts import ArtifactStore
from local_models.catalog import load_catalog
from local_models.llama_pool import LlamaPool, LlamaSettings, gpu_offload_supported
from sync.policy_store import load_last_known_good

if TYPE_CHECKING:
    from sync.agent import SyncAgent

log = logging.getLogger("appliance.runtime")


class Runtime:
    def __init__(self, config: Config, data_dir: Path) -> None:
        self.config = config
        self.data = DataDir(data_dir)
        self.started_at = time.time()
        self.db: StateDB | None = None
        self._keys: KeyStore | None = None
        self._identity: IdentityStore | None = None
        self.profile: Profile | None = None
        self.local: LocalProvider | None = None
        self.providers: list[Provider] = []
        self.router = Router([], aliases_from_config(config.aliases),
                             ProviderHealth(config.provider_health),
                             price=config.limits_policy.price)
        self._pipeline: Pipeline | None = None
        self.policies = PolicyHolder(*self._initial_policy(), owner_lookup=self._owner)
        self._limiter: Limiter | None = None
        self.audit_log = AuditLog(self.data, config.audit)
        self.estimator = TokenEstimator(self.data.models,
                                        config.limits_policy.approx_bytes_per_token)
        self.ledger = UsageLedger(self.data.state_db,
                                  config.limits_policy.ledger_batch_interval_ms)
        #: Set by ``serve`` on an enrolled box (``sync.agent.build_agent``).
        self.sync_agent: SyncAgent | None = None

    @property
    def keys(self) -> KeyStore:
        assert self._keys is not None, "Runtime.prepare() was not called"
        return self._keys

    @property
    def identity(self) -> IdentityStore:
        assert self._identity is not None, "Runtime.prepare() was not called"
        return self._identity

    @property
    def limiter(self) -> Limiter:
        assert self._limiter is not None, "Runtime.prepare() was not called"
        return self._limiter

    @property
    def pipeline(self) -> Pipeline:
        assert self._pipeline is not None, "Runtime.prepare() was not called"
        return self._pipeline

    def prepare(self) -> str | None:
        """Create the data directory and database; on first start create the bootstrap admin
        key and return it (the only time its plaintext is shown)."""
        self.data.create()
        self.db = StateDB(self.data.state_db)
        self._keys = KeyStore(self.db, self.data.master_key())
        self._identity = IdentityStore(self.db)
        self._limiter = Limiter(self.config.limits_policy, LimitStore(self.db),
                                describe=self._describe_scope)
        self._pipeline = Pipeline(self._keys, self.router, self.config.limits, self.audit_log,
                                  Accounting(self.estimator, self._limiter, self.ledger),
                                  Classifier(self.config.classify), self.policies)
        if self.data.admin_key_file.exists() or self._keys.has_role("admin"):
            return None
        plaintext, key = self._keys.create("bootstrap admin", role="admin")
        self.data.write_secret("admin.key", (plaintext + "\n").encode())
        self._bootstrap_key_id = key.id
        return plaintext

    def _initial_policy(self) -> tuple[PolicyConfig, str]:
        """The last known-good policy central sent (``sync.policy_store``), else the policy
        file named in the config, else the ``[policy]`` section."""
        try:
            synced = load_last_known_good(self.data.root)
        except PolicyError as exc:
            raise ConfigError(f"last known-good policy from central: {exc}") from exc
        if synced is not None:
            return synced[0], f"central (last known-good, policy version {synced[0].version})"
        if self.config.policy_file:
            try:
                return load_policy(Path(self.config.policy_file)), (
                    f"file {self.config.policy_file}")
            except PolicyError as exc:
                raise ConfigError(f"key `policy_file`: {exc}") from exc
        return self.config.policy, "config"

    def _owner(self, tenant_id: str | None, department_id: str | None,
               app_id: str | None) -> Owner:
        """Ids and names of a key's owners, for matching policy overrides."""
        def pair(kind: str, ident: str | None) -> tuple[str | None, str | None]:
            if ident is None:
                return (None, None)
            try:
                return (ident, self.identity.get(kind, ident).name)  # type: ignore[arg-type]
            except Exception:  # noqa: BLE001 - a vanished entity matches by id only
                return (ident, None)
        return Owner(pair("tenant", tenant_id), pair("department", department_id),
                     pair("app", app_id))

    def check_policy(self, policy: PolicyConfig) -> None:
        """Every fallback model a policy names is served here (``PolicyError`` if not)."""
        served = {m.id for p in self.router.providers for m in p.models()}
        tables = [("fallback_model", policy.fallback_model)] + [
            (f"overrides[{i}].fallback_model", o.fallback_model)
            for i, o in enumerate(policy.overrides)]
        for where, table in tables:
            for level in LEVELS:
                model = getattr(table, level)
                if model is not None and model not in served:
                    raise PolicyError(f"field `{where}.{level}`: no provider serves the model "
                                      f"'{model}'")

    def apply_policy(self, policy: PolicyConfig, source: str) -> None:
        """Put ``policy`` in force for the next request (atomic), after checking it against
        the served models; records a ``policy_applied`` audit event."""
        self.check_policy(policy)
        self.policies.swap(policy, source)
        digest = hashlib.sha256(msgspec.json.encode(policy)).hexdigest()
        try:
            self.audit_log.submit(admin_event("policy_changed", version=str(policy.version),
                                              source=source, sha256=digest))
        except AuditUnavailable:  # before the log is open (start-up): the start records it
            pass
        log.info("policy version %d applied from %s", policy.version, source)

    def prepare_sync(self) -> SyncAgent | None:
        """On an enrolled box, build the sync agent (the lifespan, or ``POST /admin/v1/sync/
        now`` after a later ``appliance enroll``, starts it) and queue usage rows for central
        from now on; a box never enrolled stays standalone. ``EnrollmentError`` when the
        enrollment or the box's key cannot be read."""
        from appliance import __version__
        from sync.agent import build_agent  # sync imports the runtime's types

        def hardware() -> dict[str, Any]:
            return report_dict(probe(), self.profile) if self.profile is not None else {}

        self.sync_agent = build_agent(
            self, self.data.root, self.config.sync,
            model=self.local.chat_model if self.local else None, hardware=hardware,
            version=__version__)
        self.ledger.enqueue_for_sync = self.sync_agent is not None
        return self.sync_agent

    def _describe_scope(self, kind: str, scope_id: str) -> str:
        """A scope's name for refusal messages ("department 'Radiology'")."""
        try:
            if kind == "key":
                return self.keys.get(scope_id).name
            return self.identity.get(kind, scope_id).name  # type: ignore[arg-type]
        except Exception:  # noqa: BLE001 - a name is a courtesy; the id will do
            return scope_id

    def start_writers(self) -> None:
        """Start the usage ledger's writer (after the database is migrated)."""
        self.ledger.start()

    def start_audit(self) -> None:
        """Open the audit log (recovering a crashed tail) and record the start; raises
        AuditLocked when another process holds this data directory."""
        self.audit_log.start()
        key_id = getattr(self, "_bootstrap_key_id", None)
        if key_id is not None:
            self.audit_log.submit(admin_event("key_created", key_id=key_id, role="admin"))
        self._record_config_change()

    def _record_config_change(self) -> None:
        """Record a ``config_changed`` event when the effective configuration differs from the
        one the last start ran with (only its digest is kept, never its values)."""
        assert self.db is not None
        digest = hashlib.sha256(msgspec.json.encode(self.config)).hexdigest()
        row = self.db.conn.execute("SELECT value FROM meta WHERE key = 'config_sha256'").fetchone()
        if row is not None and row[0] == digest:
            return
        self.audit_log.submit(admin_event(
            "config_changed", change="configuration loaded", sha256=digest,
            previous_sha256=row[0] if row else ""))
        self.db.conn.execute("INSERT INTO meta(key, value) VALUES ('config_sha256', ?) "
                             "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (digest,))

    async def drain_admin_events(self) -> int:
        """Move administrative events the CLI queued in state.db into the audit log, keeping
        their time; each row is deleted only once its record is written."""
        assert self.db is not None
        rows = self.db.conn.execute(
            "SELECT id, time, kind, actor, detail FROM audit_outbox ORDER BY id LIMIT 500"
        ).fetchall()
        for row_id, when, kind, actor, detail in rows:
            await self.audit_log.append(AdminEvent(time=when, kind=kind, actor=actor,
                                                   detail=json.loads(detail)))
            self.db.conn.execute("DELETE FROM audit_outbox WHERE id = ?", (row_id,))
        return len(rows)

    async def record_admin_event(self, kind: str, actor: str, **detail: str) -> None:
        await self.audit_log.append(admin_event(kind, actor, **detail))  # type: ignore[arg-type]

    def connect_providers(self) -> None:
        """Site and cloud providers from ``[[providers]]``; their credentials are resolved
        now, so a missing key stops the start with a message naming it (never its value)."""
        self.providers = list[Provider](build_providers(self.config.providers))
        self.router.providers.extend(self.providers)

    async def close_providers(self) -> None:
        for provider in self.providers:
            await provider.close()

    def choose_profile(self) -> Profile:
        return choose_profile(probe(offload_check=gpu_offload_supported))

    def load_models(self) -> None:
        """Verify and load the local models (blocking; the lifespan runs it in a thread)."""
        local = self.config.local
        self.profile = profile = self.choose_profile()
        log.info("hardware profile %s: %s", profile.name, profile.reason)
        catalog = load_catalog()
        store = ArtifactStore(self.data.models, catalog)
        chat_name = local.chat_model or profile.chat_model
        chat_entry = catalog.get(chat_name)
        files = store.ensure_verified(chat_name)
        gguf = next(p for name, p in files.items() if name.endswith(".gguf"))
        context = local.context_length or profile.context_length
        if chat_entry.context_length:
            context = min(context, chat_entry.context_length)
        settings = LlamaSettings(
            model_path=gguf, context_length=context, threads=local.threads or profile.threads,
            gpu_layers=profile.gpu_layers if local.gpu_layers is None else local.gpu_layers,
            batch_size=local.batch_size or profile.batch_size,
            pool_size=local.pool_size or profile.pool_size, queue_size=local.queue_size,
            chat_format=chat_entry.chat_format or "chatml")
        pool = LlamaPool(settings)
        pool.load()
        embedder = None
        if local.embedding_model:
            from local_models.embeddings import MiniLMEmbedder

            emb_files = store.ensure_verified(local.embedding_model)
            embedder = MiniLMEmbedder.load(emb_files["model.onnx"], emb_files["tokenizer.json"],
                                           threads=local.embedding_threads)
        self.local = LocalProvider(chat_name, pool, local.embedding_model or None, embedder,
                                   self.config.limits)
        # Admission counts the local model's prompts with its own tokenizer and chat format.
        self.estimator.register_local(
            chat_name, lambda text: len(pool.tokenize(text)),
            lambda messages: len(pool.tokenize(pool.format_chat(messages))))
        if local.embedding_model and embedder is not None:
            self.estimator.register_local(local.embedding_model,
                                          lambda text: embedder.count_tokens([text])[0])
        installed = [n for n in ("cl100k_base", "o200k_base")
                     if (self.data.models / n / f"{n}.tiktoken").is_file()]
        self.estimator.preload(installed)  # keep building encodings off the first request
        self.router.providers.append(self.local)
        log.info("local model %s loaded: %d context(s), n_ctx %d, %d thread(s), gpu layers %d",
                 chat_name, settings.pool_size, settings.context_length, settings.threads,
                 settings.gpu_layers)

    def check_routes(self) -> None:
        """Aliases and policy fallback models name served models (``ConfigError`` if not);
        run once every provider, the local model included, is in the router."""
        self.router.check()
        try:
            self.check_policy(self.policies.policy)
        except PolicyError as exc:
            raise ConfigError(f"policy ({self.policies.source}): {exc}") from exc

    def readiness(self) -> dict[str, bool]:
        database = True
        try:
            assert self.db is not None
            self.db.check_writable()
        except Exception:  # noqa: BLE001 - any failure means "not ready"
            log.warning("readiness: database is not writable", exc_info=True)
            database = False
        return {"model_loaded": self.local is not None and self.local.ready(),
                "database_writable": database}

    def pool_stats(self) -> dict[str, Any]:
        if self.local is None:
            return {}
        stats = asdict(self.local.pool.stats())
        stats.pop("extra", None)
        return stats

    def close(self) -> None:
        if self.local is not None:
            self.local.pool.close()
        self.ledger.close()
        self.audit_log.close()
        if self.db is not None:
            self.db.close()

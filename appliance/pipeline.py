"""The request pipeline: every step of ARCHITECTURE.md, in order, in one place.

HTTP handlers parse nothing and decide nothing: they hand the raw body and the Authorization
header to ``run_generation`` / ``run_embeddings`` and shape what comes back. A reader sees the
whole path of a request here:

 1. authenticate      API key -> principal
 2. parse_and_validate OpenAI schema -> internal request (400 naming the field)
 3. classify          identifiers and secrets -> sensitivity + finding types (appliance.classify)
 4. guard_input       [passes through: routing issue] injection and content rules
 5. decide_route      requested model or alias -> candidates policy allows, healthy, ranked
                      (fails closed; may reroute, or redact: appliance.redact)
 6. admit             reserve tokens, requests and money at every level (appliance.limits)
 7. cache_lookup      [passes through: caching issue] exact and semantic lookup
 8. call              provider: whole answer or stream of deltas; before the first byte a
                      failing candidate falls back to the next
 9. guard_output      re-identification of a redacted request's placeholders (appliance.redact),
                      also across stream chunks; [passes through: routing issue] DLP
10. settle            actual usage into the limiters and the usage ledger
11. audit             one encrypted, hash-chained record (appliance.audit)
12. respond           headers describing the route (the body is shaped by the HTTP layer)

Steps marked "passes through" keep their place and signature so the issue that builds them
changes the step, not the shape of the pipeline.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal

from appliance.audit import AuditLog, AuditUnavailable, Content, Principal, RequestRecord
from appliance.classify import Classifier
from appliance.config import LimitsConfig
from appliance.classify import Finding, Sensitivity
from appliance.errors import (ApplianceError, AuthenticationFailed, InvalidRequest,
                              PolicyBlocked, RateLimited, ServiceUnavailable, UpstreamError)
from appliance.keys import ApiKey, KeyStore
from appliance.limits import (Limiter, Reservation, TokenEstimator, UsageLedger, UsageRow,
                              cost_micros)
from appliance.policy import EffectivePolicy, PolicyConfig, PolicyHolder
from appliance.openai_schema import parse_chat, parse_completion, parse_embeddings
from appliance.providers.base import Embeddings, ModelKind
from appliance.redact import Redaction, request_texts
from appliance.routing import Candidates, Route, Router
from appliance.types import Delta, EmbeddingRequest, Generation, GenerationRequest, Usage

log = logging.getLogger("appliance.pipeline")

#: Failures of a candidate that the next candidate of an alias may make good (before output).
FALLBACK_ERRORS = (UpstreamError, RateLimited)


@dataclass(slots=True)
class RequestContext:
    """What the pipeline learns about one request as it goes."""

    request_id: str
    started_ns: int = field(default_factory=time.perf_counter_ns)
    principal: ApiKey | None = None
    request: GenerationRequest | EmbeddingRequest | None = None
    route: Route | None = None
    #: The routes still to try, in order, the chosen one first (``call`` falls back along it).
    candidates: list[Route] = field(default_factory=list)
    sensitivity: str = "public"
    #: What policy did: allow, redact, reroute or block (recorded in the audit log).
    action: Literal["allow", "redact", "reroute", "block"] = "allow"
    #: Types of the identifiers found (never their values), for routing and the audit record.
    finding_types: tuple[str, ...] = ()
    #: Where the identifiers are (message index, span); None until ``classify`` ran.
    findings: tuple[tuple[int, Finding], ...] | None = None
    #: A level the client declared (``x-data-classification``): it can raise, never lower.
    declared: str | None = None
    #: The policy for this request's key (overrides applied); set by ``classify``.
    policy: EffectivePolicy | None = None
    #: The raw ``x-appliance-max-latency-ms`` header, parsed by ``classify``.
    latency_header: str | None = None
    #: The latency budget (``x-appliance-max-latency-ms``, else the app's policy), in ms.
    max_latency_ms: int | None = None
    #: Zones this request may reach only with its identifiers redacted (``redact`` action).
    redact_zones: frozenset[str] = frozenset()
    #: The placeholders of a redacted request and their values: in memory for the life of the
    #: request only, never logged (its repr shows counts) nor audited.
    redaction: Redaction | None = field(default=None, repr=False)
    cache: str = "bypass"
    usage: Usage | None = None
    status: int = 200
    error: ApplianceError | None = None
    reservation: Reservation | None = None
    cost_micros: int = 0
    #: The answer's text, kept only when the audit policy records content.
    response_text: str | None = None


def _prompt_text(request: GenerationRequest | EmbeddingRequest | None) -> str | None:
    if request is None:
        return None
    if isinstance(request, EmbeddingRequest):
        return "\n".join(request.inputs)
    if request.messages is not None:
        return "\n".join(f"{m.role}: {m.content}" for m in request.messages)
    return request.prompt


@dataclass(slots=True)
class Accounting:
    """Admission and settlement: estimates, the limiter and the usage ledger."""

    estimator: TokenEstimator
    limiter: Limiter
    ledger: UsageLedger


class Pipeline:
    def __init__(self, keys: KeyStore, router: Router, limits: LimitsConfig,
                 audit_log: AuditLog | None = None,
                 accounting: Accounting | None = None,
                 classifier: Classifier | None = None,
                 policy: PolicyConfig | PolicyHolder | None = None) -> None:
        self.keys = keys
        self.policies = (policy if isinstance(policy, PolicyHolder)
                         else PolicyHolder(policy or PolicyConfig()))
        self.classifier = classifier
        self.router = router
        self.limits = limits
        self.accounting = accounting
        self.audit_log = audit_log
        self.keep_content = audit_log is not None and audit_log.config.content != "none"
        #: Requests on the OpenAI routes being served now (kept by the HTTP layer): the audit
        #: step flushes a request's record on its own thread when it is the only one.
        self.in_flight = 0

    # 1 ------------------------------------------------------------------------------------
    def authenticate(self, ctx: RequestContext, authorization: str | None) -> ApiKey:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationFailed(
                "You didn't provide an API key. Send it in the Authorization header as "
                "'Bearer YOUR_KEY'.", code="missing_api_key")
        key = self.keys.lookup(token.strip())
        if key is None:
            raise AuthenticationFailed("Incorrect API key provided, or the key was revoked or "
                                       "has expired.")
        ctx.principal = key
        return key

    # 2 ------------------------------------------------------------------------------------
    def parse_and_validate(self, body: bytes, endpoint: str) -> GenerationRequest:
        if endpoint == "chat":
            return parse_chat(body, self.limits)
        return parse_completion(body, self.limits)

    # 3 ------------------------------------------------------------------------------------
    def effective_policy(self, ctx: RequestContext) -> EffectivePolicy:
        """The policy in force for this request's key, overrides applied (cached)."""
        if ctx.policy is None:
            key = ctx.principal
            ctx.policy = (self.policies.for_owner(key.tenant_id, key.department_id, key.app_id)
                          if key is not None else self.policies.base())
        return ctx.policy

    def classify(self, ctx: RequestContext, request: GenerationRequest | EmbeddingRequest
                 ) -> None:
        """Find identifiers and secrets in everything the model will see; findings plus the
        declared level (header, else the app's policy default) give the request's sensitivity
        (routing policy acts on it next)."""
        policy = self.effective_policy(ctx)
        if ctx.latency_header is not None:
            try:
                ctx.max_latency_ms = int(ctx.latency_header.strip())
                if ctx.max_latency_ms < 1:
                    raise ValueError
            except ValueError as exc:
                raise InvalidRequest("The latency budget must be a whole number of "
                                     "milliseconds >= 1.",
                                     param="x-appliance-max-latency-ms") from exc
        else:
            ctx.max_latency_ms = policy.max_latency_ms
        if isinstance(request, EmbeddingRequest):
            texts = request.inputs
        elif request.messages is not None:
            texts = [m.content for m in request.messages]
        else:
            texts = [request.prompt or ""]
        if self.classifier is None:
            level = Sensitivity.PUBLIC
            found: tuple[str, ...] = ()
        else:
            result = self.classifier.classify_messages(texts)
            level = result.sensitivity
            ctx.findings = result.findings
            found = tuple(sorted({f.type for _, f in result.findings}))
        if ctx.declared is not None and ctx.declared.strip():
            try:
                level = max(level, Sensitivity.parse(ctx.declared))
            except ValueError as exc:
                raise InvalidRequest(
                    f"Unknown data classification '{ctx.declared}': use public, internal, "
                    "confidential or restricted.", param="x-data-classification") from exc
        if policy.classification is not None:  # the app's default declaration
            level = max(level, Sensitivity.parse(policy.classification))
        ctx.sensitivity, ctx.finding_types = level.label, found

    # 4 ------------------------------------------------------------------------------------
    def guard_input(self, ctx: RequestContext, request: GenerationRequest) -> None:
        """Passes through until the routing issue."""

    # 5 ------------------------------------------------------------------------------------
    def decide_route(self, ctx: RequestContext, request: GenerationRequest | EmbeddingRequest,
                     kind: ModelKind = "chat") -> Route:
        assert ctx.principal is not None
        found = self.router.resolve(request.model, kind, ctx.principal)
        ctx.candidates = self.plan(ctx, found)
        ctx.route = ctx.candidates[0]
        return ctx.route

    def plan(self, ctx: RequestContext, found: Candidates) -> list[Route]:
        """The routes to try, in order. Fail closed: a request never reaches a zone its
        sensitivity may not reach. A forbidden concrete model is refused (403) unless the
        level's action is ``reroute`` and it has a ``fallback_model``; an alias drops its
        forbidden candidates (``reroute``, its default) or is refused (``block``). Then
        unhealthy or unready candidates are skipped (none left: 503 saying why).

        ``redact``: a forbidden candidate stays, to be sent the request with its identifiers
        replaced by placeholders, if the redacted text's own level may reach its zone (see
        ``_redactable``); with none left (and no allowed candidate) the request is refused.
        An alias tries its allowed candidates first, in their usual order, and its redacted
        ones only after them (when the allowed ones are unhealthy, unready or fail before the
        first byte): unredacted data on the premises beats redacted data outside, since
        redaction is only as good as the detectors. An alias of cloud-only candidates is
        therefore redacted, one with a healthy on-site candidate is not."""
        level = ctx.sensitivity
        policy = self.effective_policy(ctx)
        allowed_zones = policy.zones(level)
        action = policy.on_forbidden[level] or (
            "reroute" if found.alias is not None else "block")
        allowed = [r for r in found.routes if r.provider.zone in allowed_zones]
        forbidden = [r for r in found.routes if r.provider.zone not in allowed_zones]
        if forbidden and action == "reroute" and found.alias is None:
            fallback = policy.fallback_model[level]
            if fallback is not None:
                route = self.router.concrete(fallback, forbidden[0].model.kind)
                allowed = [route] if route.provider.zone in allowed_zones else []
        if forbidden and action == "redact":
            allowed = allowed + self._redactable(ctx, found, allowed, forbidden)
        if forbidden and (action == "block" or not allowed):
            ctx.action = "block"
            first = forbidden[0]
            raise PolicyBlocked(
                f"This request was classified {level}; policy does not allow {level} data to "
                f"reach the {first.provider.zone} zone of model '{first.model.id}'"
                + (f" (alias '{found.alias.name}': no candidate in an allowed zone)"
                   if found.alias is not None and not allowed else "")
                + f". Allowed zones: {', '.join(allowed_zones) or 'none'}.", param="model")
        if forbidden:
            ctx.action = "redact" if allowed[0].provider.zone in ctx.redact_zones else "reroute"
        if found.alias is None:  # one candidate: tried whatever its health (no choice)
            if not allowed[0].provider.ready():
                raise ServiceUnavailable(f"The model '{allowed[0].model.id}' is not ready yet.",
                                         retry_after=5)
            return allowed
        usable, why = [], []
        for route in allowed:
            if not route.provider.ready():
                why.append(f"'{route.model.id}': not ready yet")
            elif not self.router.health.available(route.provider.name):
                why.append(f"'{route.model.id}': "
                           + self.router.health.unavailable_reason(route.provider.name))
            else:
                usable.append(route)
        if not usable:
            skipped = [f"'{r.model.id}': zone {r.provider.zone} not allowed for {level} data"
                       for r in forbidden if r.provider.zone not in ctx.redact_zones]
            raise ServiceUnavailable(
                f"No candidate of the model '{found.alias.name}' can serve this request: "
                + "; ".join(skipped + why) + ".", retry_after=5)
        return _redacted_last(ctx, self.router.rank(usable, found.alias.strategy,
                                                    ctx.max_latency_ms, ctx.request))

    def _redactable(self, ctx: RequestContext, found: Candidates, allowed: list[Route],
                    forbidden: list[Route]) -> list[Route]:
        """The forbidden candidates a redacted copy of the request may reach. The request's
        identifiers are replaced (``ctx.redaction``), the redacted text is classified again,
        and a declared level (header or the app's default) still counts: redaction removes
        what was detected, never what the client said the data is. Nothing redactable and
        nothing allowed: refused (403), saying why the redacted text is still too sensitive."""
        assert ctx.request is not None
        policy = self.effective_policy(ctx)
        ctx.redaction = Redaction.of(request_texts(ctx.request), ctx.findings or ())
        level, remaining = Sensitivity.PUBLIC, ""
        if self.classifier is not None:
            again = self.classifier.classify_messages(ctx.redaction.texts)
            level = again.sensitivity
            remaining = ", ".join(sorted({f.type for _, f in again.findings}))
        declared = self._declared_level(ctx)
        level = max(level, declared)
        ctx.redact_zones = frozenset(policy.zones(level.label)) - set(policy.zones(
            ctx.sensitivity))
        redactable = [r for r in forbidden if r.provider.zone in ctx.redact_zones]
        if redactable or allowed:
            return redactable
        ctx.action = "block"
        first = forbidden[0]
        reasons = ([f"declared {declared.label}"] if declared == level > Sensitivity.PUBLIC
                   else []) + ([f"identifiers left: {remaining}"] if remaining else [])
        why = "; ".join(reasons) or "no identifiers left"
        raise PolicyBlocked(
            f"This request was classified {ctx.sensitivity}; policy does not allow "
            f"{ctx.sensitivity} data to reach the {first.provider.zone} zone of model "
            f"'{first.model.id}'" + (f" (alias '{found.alias.name}')" if found.alias else "")
            + f", and with its identifiers redacted it is still classified {level.label} "
            f"({why}), which may not reach that zone either. Allowed zones: "
            f"{', '.join(policy.zones(ctx.sensitivity)) or 'none'} for {ctx.sensitivity} data, "
            f"{', '.join(policy.zones(level.label)) or 'none'} for {level.label} data.",
            param="model")

    def _declared_level(self, ctx: RequestContext) -> Sensitivity:
        """The level the client declared (header) or the app's policy declares by default."""
        policy = self.effective_policy(ctx)
        levels = [Sensitivity.parse(name) for name in (ctx.declared, policy.classification)
                  if name is not None and name.strip()]
        return max(levels, default=Sensitivity.PUBLIC)

    def check_zone(self, ctx: RequestContext, route: Route, redacted: bool = False) -> None:
        """The last line of defence before an upstream call: the route's zone is allowed, or
        it is a zone the redacted request may reach and the request is ``redacted``."""
        allowed = self.effective_policy(ctx).zones(ctx.sensitivity)
        if route.provider.zone not in allowed and not (
                redacted and ctx.redaction is not None
                and route.provider.zone in ctx.redact_zones):
            ctx.action = "block"
            raise PolicyBlocked(
                f"This request was classified {ctx.sensitivity}; policy does not allow "
                f"{ctx.sensitivity} data to reach the {route.provider.zone} zone of model "
                f"'{route.model.id}'. Allowed zones: {', '.join(allowed) or 'none'}.",
                param="model")

    # 6 ------------------------------------------------------------------------------------
    def admit(self, ctx: RequestContext, request: GenerationRequest | EmbeddingRequest) -> None:
        """Reserve the estimated prompt tokens plus max_tokens, one request and the worst-case
        cost at every level (key, app, department, tenant) before any upstream call. There is
        no await between check and reservation, so concurrent requests cannot overshoot."""
        if self.accounting is None or ctx.principal is None or ctx.route is None:
            return
        estimator, limiter = self.accounting.estimator, self.accounting.limiter

        def estimate(model: str) -> int:
            if isinstance(request, EmbeddingRequest):
                return sum(estimator.estimate_text(model, text) for text in request.inputs)
            if request.messages is not None:
                return estimator.estimate_chat(model, request.messages)
            return estimator.estimate_text(model, request.prompt or "")

        max_tokens = 0 if isinstance(request, EmbeddingRequest) else request.sampling.max_tokens
        # Any candidate may end up serving (fallback), so reserve for the dearest of them.
        models = {route.model.id for route in ctx.candidates} or {ctx.route.model.id}
        prompt = max(estimate(m) for m in models)
        answer = limiter.policy.default_max_tokens if max_tokens is None else max_tokens
        model = max(sorted(models),
                    key=lambda m: cost_micros(limiter.policy.price(m), prompt, answer))
        ctx.reservation = limiter.reserve(ctx.principal, model, prompt, max_tokens)

    # 7 ------------------------------------------------------------------------------------
    def cache_lookup(self, ctx: RequestContext, request: GenerationRequest) -> Generation | None:
        """Passes through until the caching issue: always a miss."""
        return None

    # 8 ------------------------------------------------------------------------------------
    async def call(self, ctx: RequestContext, request: GenerationRequest
                   ) -> Generation | AsyncIterator[Delta]:
        """Try the candidates in order until one gives its first output: a whole answer, or
        a stream's first delta. A candidate failing before that (upstream error, timeout,
        rate limit) is recorded against its provider's health and the next one is tried;
        after the first byte of a stream nothing is retried. ``ctx.route`` is what served.
        A candidate in one of ``ctx.redact_zones`` is sent the redacted request."""
        candidates = ctx.candidates or ([ctx.route] if ctx.route is not None else [])
        health = self.router.health
        for index, route in enumerate(candidates):
            if index > 0 and not health.available(route.provider.name):
                continue  # its circuit opened during this request (e.g. the uplink went down)
            redacted = route.provider.zone in ctx.redact_zones
            self.check_zone(ctx, route, redacted)
            ctx.route = route
            if redacted:
                ctx.action = "redact"
            name = route.provider.name
            outgoing = ctx.redaction.apply(request) if redacted and ctx.redaction else request
            # The provider is asked for the model it serves, not the alias the client named.
            served = (outgoing if outgoing.model == route.model.id
                      else dataclasses.replace(outgoing, model=route.model.id))
            self.router.health.begin(name)
            started = time.perf_counter()
            try:
                result: Generation | AsyncIterator[Delta]
                if request.stream:
                    result = await _started(route.provider.stream(served))
                else:
                    result = await route.provider.generate(served)
            except FALLBACK_ERRORS as exc:
                health.record_failure(name, exc)
                rest = [r for r in candidates[index + 1:] if health.available(r.provider.name)]
                if not rest:
                    raise
                log.warning("request %s: %s failed before its first byte (%s); trying %s",
                            ctx.request_id, route.label, exc.code or exc.error_type,
                            rest[0].label)
                continue
            self.router.health.record_success(
                name, route.model.id, time.perf_counter() - started,
                result.usage.completion_tokens if isinstance(result, Generation) else None)
            return result
        raise AssertionError("call() without a route")

    # 9 ------------------------------------------------------------------------------------
    def guard_output(self, ctx: RequestContext, text: str) -> str:
        """A whole answer to a redacted request gets its placeholders back as the client's
        values (streams: ``_finish_stream``, which holds back a placeholder split across
        chunks). DLP of answers is not done yet."""
        if ctx.redaction is not None and _served_redacted(ctx):
            return ctx.redaction.reidentify(text)
        return text

    # 10 -----------------------------------------------------------------------------------
    async def settle(self, ctx: RequestContext, usage: Usage | None) -> None:
        """Replace the reservation with what was actually used (nothing used: release it) and
        queue the ledger row; the ledger writes rows in batches off the request path."""
        ctx.usage = usage
        if self.accounting is None or ctx.principal is None:
            return
        if ctx.reservation is not None:
            if usage is None:
                ctx.reservation.release()
            else:
                ctx.cost_micros = ctx.reservation.settle(
                    usage.prompt_tokens, usage.completion_tokens,
                    model=ctx.route.model.id if ctx.route is not None else None)
        key, request, route = ctx.principal, ctx.request, ctx.route
        self.accounting.ledger.record(UsageRow(
            time=time.time(), request_id=ctx.request_id, tenant_id=key.tenant_id,
            department_id=key.department_id, app_id=key.app_id, key_id=key.id,
            user=request.user if request is not None else None,
            model_requested=request.model if request is not None else "",
            model_served=route.model.id if route else None,
            provider=route.provider.name if route else None,
            zone=route.provider.zone if route else None,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0, cached_tokens=0,
            cost_micros=ctx.cost_micros, cache_hit=ctx.cache == "hit",
            latency_ms=(time.perf_counter_ns() - ctx.started_ns) / 1e6, status=ctx.status))

    # 11 -----------------------------------------------------------------------------------
    async def audit(self, ctx: RequestContext) -> None:
        """One encrypted record per request, whatever its outcome. In strict durability the
        answer is not complete until the record is on disk; if it cannot be written the
        request fails (closed) rather than going unrecorded."""
        if self.audit_log is None:
            return
        key, request, route, usage = ctx.principal, ctx.request, ctx.route, ctx.usage
        principal = Principal(
            tenant=(key and key.tenant_id) or "", department=(key and key.department_id) or "",
            app=(key and key.app_id) or "", key_id=key.id if key else "",
            user=(request.user if request is not None else None) or "")
        content = self._content(ctx) if self.keep_content else Content()
        record = RequestRecord(
            request_id=ctx.request_id, principal=principal,
            model_requested=request.model if request is not None else "",
            model_served=route.model.id if route else "",
            provider=route.provider.name if route else "",
            zone=route.provider.zone if route else "", sensitivity=ctx.sensitivity,
            finding_types=ctx.finding_types, action=ctx.action,
            cache=ctx.cache, prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            latency_ms=(time.perf_counter_ns() - ctx.started_ns) / 1e6, status=ctx.status,
            error_type=(ctx.error.code or ctx.error.error_type) if ctx.error else "",
            content=content)
        try:
            await self.audit_log.append(record, alone=self.in_flight <= 1)
        except AuditUnavailable as exc:
            raise ServiceUnavailable("The audit log cannot record this request, so it was not "
                                     "completed.", code="audit_unavailable") from exc

    def _content(self, ctx: RequestContext) -> Content:
        """The prompt and answer as the audit's content mode keeps them. ``redacted``: with
        the request's identifiers, and any the answer has of its own, as placeholders (for a
        redacted request, the very text sent upstream); never the mapping. Without a
        classifier nothing can be redacted, so the record falls back to a hash."""
        assert self.audit_log is not None
        request, response = ctx.request, ctx.response_text
        prompt = _prompt_text(request)
        if (self.audit_log.config.content != "redacted" or self.classifier is None
                or request is None):
            return self.audit_log.content(prompt, response)
        texts = request_texts(request)
        findings = ctx.findings
        if findings is None:  # refused before it was classified
            findings = self.classifier.classify_messages(texts).findings
        redaction = ctx.redaction or Redaction.of(texts, findings)
        redacted_response = None
        if response is not None:
            own = self.classifier.classify_messages([response]).findings
            redacted_response = redaction.mask(response, (f for _, f in own))
        return self.audit_log.content(prompt, response, _prompt_text(redaction.apply(request)),
                                      redacted_response)

    # 12 -----------------------------------------------------------------------------------
    def respond(self, ctx: RequestContext) -> dict[str, str]:
        """Headers saying how the request was routed; ``x-appliance-action`` (allow, redact,
        reroute) once a route was chosen, ``block`` on a policy refusal."""
        headers = {"x-appliance-sensitivity": ctx.sensitivity, "x-appliance-cache": ctx.cache}
        if ctx.route is not None:
            headers["x-appliance-route"] = ctx.route.label
            headers["x-appliance-zone"] = ctx.route.provider.zone
        if ctx.route is not None or ctx.action == "block":
            headers["x-appliance-action"] = ctx.action
        if self.accounting is not None and ctx.principal is not None:
            headers.update(self.accounting.limiter.headers(ctx.reservation or ctx.principal))
        return headers

    async def _fail(self, ctx: RequestContext, exc: ApplianceError) -> None:
        """A refused or failed request: release what it held, record it, and let its error
        response carry the same headers a success would."""
        ctx.status, ctx.error = exc.status, exc
        await self.settle(ctx, None)
        exc.extra_headers = self.respond(ctx)
        await self.audit(ctx)

    # the whole path -----------------------------------------------------------------------

    async def run_generation(self, ctx: RequestContext, authorization: str | None, body: bytes,
                             endpoint: str) -> tuple[GenerationRequest, Generation | AsyncIterator[Delta]]:
        """Steps 1-12 for chat and completions. A stream's steps 9-11 run as it is consumed
        (``_finish_stream``), so they see what was actually sent, even when the client leaves."""
        try:
            self.authenticate(ctx, authorization)
            request = self.parse_and_validate(body, endpoint)
            ctx.request = request
            self.classify(ctx, request)
            self.guard_input(ctx, request)
            self.decide_route(ctx, request)
            self.admit(ctx, request)
            result = self.cache_lookup(ctx, request) or await self.call(ctx, request)
        except ApplianceError as exc:
            await self._fail(ctx, exc)
            raise
        except BaseException:
            if ctx.reservation is not None:  # a bug or a cancellation: hold nothing
                ctx.reservation.release()
            raise
        if isinstance(result, Generation):
            result.text = self.guard_output(ctx, result.text)
            if self.keep_content:
                ctx.response_text = result.text
            await self.settle(ctx, result.usage)
            await self.audit(ctx)
            return request, result
        return request, self._finish_stream(ctx, result)

    async def _finish_stream(self, ctx: RequestContext, deltas: AsyncIterator[Delta]
                             ) -> AsyncIterator[Delta]:
        usage: Usage | None = None
        parts: list[str] | None = [] if self.keep_content else None
        first_token = time.perf_counter()  # the first delta is already here (``_started``)
        # A redacted request's answer: placeholders split across deltas are held back until
        # complete; what is held is sent with the last delta (the one with finish_reason).
        restore = (ctx.redaction.restorer()
                   if ctx.redaction is not None and _served_redacted(ctx) else None)
        try:
            async for delta in deltas:
                if restore is not None:
                    delta.text = restore.feed(delta.text)
                    if delta.finish_reason is not None:
                        delta.text += restore.flush()
                else:
                    delta.text = self.guard_output(ctx, delta.text)
                if delta.usage is not None:
                    usage = delta.usage
                if parts is not None:
                    parts.append(delta.text)
                yield delta
            if usage is not None and ctx.route is not None:  # tokens after the first one
                self.router.health.record_throughput(
                    ctx.route.provider.name, ctx.route.model.id, usage.completion_tokens - 1,
                    time.perf_counter() - first_token)
        except ApplianceError as exc:
            ctx.status, ctx.error = exc.status, exc
            if isinstance(exc, UpstreamError) and ctx.route is not None:
                self.router.health.record_failure(ctx.route.provider.name, exc)
            raise
        finally:
            await deltas.aclose()  # type: ignore[attr-defined]
            if parts is not None:
                ctx.response_text = "".join(parts)
            await self.settle(ctx, usage)  # usage so far, when the stream was cut short
            await self.audit(ctx)

    async def run_embeddings(self, ctx: RequestContext, authorization: str | None,
                             body: bytes) -> tuple[EmbeddingRequest, Embeddings]:
        try:
            self.authenticate(ctx, authorization)
            request = parse_embeddings(body, self.limits)
            ctx.request = request
            self.classify(ctx, request)
            self.decide_route(ctx, request, "embedding")
            self.admit(ctx, request)
            assert ctx.route is not None
            redacted = ctx.route.provider.zone in ctx.redact_zones
            self.check_zone(ctx, ctx.route, redacted)
            # Redacted inputs: the vectors are those of the redacted texts (nothing to
            # re-identify in a vector).
            outgoing = ctx.redaction.apply(request) if redacted and ctx.redaction else request
            result = await ctx.route.provider.embed(
                dataclasses.replace(outgoing, model=ctx.route.model.id))
        except ApplianceError as exc:
            await self._fail(ctx, exc)
            raise
        except BaseException:
            if ctx.reservation is not None:
                ctx.reservation.release()
            raise
        await self.settle(ctx, result.usage)
        await self.audit(ctx)
        return request, result


def _served_redacted(ctx: RequestContext) -> bool:
    """Whether the route that served was sent the redacted request."""
    return ctx.route is not None and ctx.route.provider.zone in ctx.redact_zones


def _redacted_last(ctx: RequestContext, ranked: list[Route]) -> list[Route]:
    """An alias's candidates with those that need redaction after the others (stable, so
    the ranking holds within each group); ``redact`` when only those are left."""
    if not ctx.redact_zones:
        return ranked
    ranked = sorted(ranked, key=lambda route: route.provider.zone in ctx.redact_zones)
    if ranked and ranked[0].provider.zone in ctx.redact_zones:
        ctx.action = "redact"
    return ranked


class _Primed:
    """A stream whose first delta has already arrived: yields it, then the rest."""

    def __init__(self, first: Delta | None, rest: AsyncIterator[Delta]) -> None:
        self._first, self._rest = first, rest

    def __aiter__(self) -> _Primed:
        return self

    async def __anext__(self) -> Delta:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        return await self._rest.__anext__()

    async def aclose(self) -> None:
        await self._rest.aclose()  # type: ignore[attr-defined]


async def _started(deltas: AsyncIterator[Delta]) -> AsyncIterator[Delta]:
    """Wait for a stream's first delta, so that a failure before any output is raised here
    (where the next candidate can still be tried) rather than to the client."""
    try:
        first: Delta | None = await deltas.__anext__()
    except StopAsyncIteration:
        first = None
    except BaseException:
        await deltas.aclose()  # type: ignore[attr-defined]
        raise
    return _Primed(first, deltas)

"""P processes x C concurrent requests on a token that has just expired, per client, in one run.

    python -m bench.stampede [--processes 8] [--concurrency 50] [--endpoint-latency 0.05]
                             [--postgres-url URL] [--verbose]

Every row starts P fresh processes (spawn) that all hold the same expired access token and the
same refresh token, wait on one barrier, then each fire C concurrent ``GET /api``. The issuer
(``bench._servers:issuer_app``, one uvicorn worker) answers token requests after
``--endpoint-latency`` seconds, accepts each refresh token once (a second presentation is
counted as reuse and refused with ``invalid_grant``, as a rotating server does), and its API
accepts only unexpired access tokens it issued.

Rows:

- plain httpx with a valid static token: the baseline. Its median latency, under the same
  P x C load, is subtracted from every request of the other rows ("added latency");
- jwt_outbound ``AsyncTokenManager`` over a ``SQLTokenStore`` on a SQLite file, then on
  PostgreSQL (``--postgres-url`` or ``$JWT_OUTBOUND_TEST_POSTGRES``; skipped when unset). The
  parent logs in once while the issuer hands out born-expired access tokens, so the shared row
  holds an expired token and a valid refresh token;
- Authlib ``AsyncOAuth2Client`` with ``token_endpoint`` set: ``ensure_active_token`` refreshes
  under a per-client ``anyio.Lock``, so one refresh per process; a refused refresh raises
  ``OAuthError`` and leaves the expired token in place, so each request queued on that lock
  tries the same spent refresh token again;
- httpx-auth ``OAuth2ResourceOwnerPasswordCredentials``: its process-wide ``TokenMemoryCache``
  drops the expired token, refreshes with the ``refresh_token`` grant and, when that is
  refused, logs in again with the password grant; both with a blocking ``httpx.Client`` called
  from the auth flow, which stalls the process's event loop for the round trip.

The peers keep tokens in process memory, so each process refreshes on its own. Times count from
the moment a process's burst starts, so waiting behind a blocked event loop counts too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import dataclasses
import math
import multiprocessing
import os
import queue
import statistics
import tempfile
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from ._servers import PASSWORD, server

BARRIER_TIMEOUT = 90.0  # seconds for every process of a row to import, build and warm up
ROW_TIMEOUT = 240.0  # seconds for a whole row, from the first start to the last result
SUBJECT = "bench"
MISSING_TABLE = "has the table been created"  # in jwt_outbound's StoreError for it

# -- in each worker process ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Plan:
    """What every process of a row does; picklable for the spawn start method."""

    kind: str  # "plain", "jwt_outbound", "authlib", "httpx_auth"
    url: str  # the issuer
    concurrency: int
    database_url: str | None = None
    tenant: str | None = None
    token: dict[str, Any] | None = None  # the token every peer process starts with


Get = Callable[[], Awaitable[httpx.Response]]
# (seconds to the response, seconds until the request left with its token, status or exception)
Outcome = tuple[float, float, str]

# perf_counter() of each send of the current task's request: the clients' "request" event hook
# runs after their auth (token refresh included) and before the request goes on the wire.
_sent: contextvars.ContextVar[list[float]] = contextvars.ContextVar("sent")


async def mark_sent(request: httpx.Request) -> None:
    cell = _sent.get(None)
    if cell is not None and request.url.path == "/api":  # not a token request (Authlib's)
        cell.append(time.perf_counter())


HOOKS = {"request": [mark_sent]}


def worker(plan: Plan, index: int, barrier: Any, results: Any) -> None:
    """Process entry: put ``(index, outcomes, burst start in Unix seconds, error or None)``."""
    try:
        outcomes, started = asyncio.run(_worker(plan, barrier))
    except BaseException as exc:  # reported to the parent, which prints it
        with contextlib.suppress(Exception):
            barrier.abort()  # the others must not wait for this one until the timeout
        results.put((index, [], 0.0, f"{type(exc).__name__}: {exc}"))
        return
    results.put((index, outcomes, started, None))


async def _worker(plan: Plan, barrier: Any) -> tuple[list[Outcome], float]:
    async with contextlib.AsyncExitStack() as stack:
        # One pool per process, big enough for the burst, for every row alike.
        transport = httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=plan.concurrency)
        )
        stack.push_async_callback(transport.aclose)
        get, warm = await _build(plan, transport, stack)
        # Warm up what a running service already has open: the pool and the database.
        await asyncio.gather(*(warm() for _ in range(plan.concurrency)))
        await asyncio.to_thread(barrier.wait, BARRIER_TIMEOUT)
        # Every request of the burst is asked for now: times count from here, so that time a
        # request spends before its task first runs (a blocked event loop, say) counts too.
        started, t0 = time.time(), time.perf_counter()

        async def one() -> Outcome:
            sent: list[float] = []
            _sent.set(sent)
            try:
                status = str((await get()).status_code)
            except Exception as exc:
                status = type(exc).__name__
            done = time.perf_counter() - t0
            return done, (sent[-1] - t0) if sent else math.nan, status

        outcomes = await asyncio.gather(*(one() for _ in range(plan.concurrency)))
    return list(outcomes), started


async def _build(
    plan: Plan, transport: httpx.AsyncHTTPTransport, stack: contextlib.AsyncExitStack
) -> tuple[Get, Get]:
    url = plan.url
    if plan.kind == "plain":
        assert plan.token is not None
        client = httpx.AsyncClient(
            base_url=url,
            transport=transport,
            trust_env=False,
            event_hooks=HOOKS,
            headers={"Authorization": f"Bearer {plan.token['access_token']}"},
        )
        stack.push_async_callback(client.aclose)
        return lambda: client.get("/api"), lambda: client.get("/health")

    if plan.kind == "jwt_outbound":
        from jwt_outbound import AsyncTokenManager, SQLTokenStore

        assert plan.database_url is not None
        assert plan.tenant is not None
        store = SQLTokenStore(plan.database_url)
        stack.push_async_callback(store.aclose)
        manager = AsyncTokenManager(jwt_config(url), store=store, transport=transport)
        stack.push_async_callback(manager.aclose)
        tenant_client = manager.client(plan.tenant, base_url=url, event_hooks=HOOKS)
        stack.push_async_callback(tenant_client.aclose)
        await manager.state(plan.tenant)  # opens the store's connection pool

        def warm() -> Awaitable[httpx.Response]:
            return tenant_client.get("/health", extensions={"authenticate": False})

        return lambda: tenant_client.get("/api"), warm

    if plan.kind == "authlib":
        import authlib.deprecate

        # This Authlib warns that it fell back from httpx2 to httpx: httpx is what runs here.
        warnings.simplefilter("ignore", authlib.deprecate.AuthlibDeprecationWarning)
        from authlib.integrations.httpx_client import AsyncOAuth2Client

        assert plan.token is not None

        async def update_token(token: Any, refresh_token: Any = None, access_token: Any = None):
            pass  # where an application would persist the new token; nothing else shares it

        oauth = AsyncOAuth2Client(
            client_id="bench",
            token=dict(plan.token),
            token_endpoint=f"{url}/token",
            update_token=update_token,
            transport=transport,
            trust_env=False,
            event_hooks=HOOKS,
        )
        stack.push_async_callback(oauth.aclose)
        # httpx's get() takes no withhold_token; AsyncOAuth2Client.request does.
        return lambda: oauth.get(f"{url}/api"), lambda: oauth.request(
            "GET", f"{url}/health", withhold_token=True
        )

    if plan.kind == "httpx_auth":
        from httpx_auth import OAuth2, OAuth2ResourceOwnerPasswordCredentials

        assert plan.token is not None
        # httpx-auth fetches tokens with a blocking client; trust_env=False keeps it on loopback.
        token_client = httpx.Client(trust_env=False)
        stack.callback(token_client.close)
        auth = OAuth2ResourceOwnerPasswordCredentials(
            f"{url}/token", username=SUBJECT, password=PASSWORD, client=token_client
        )
        # Seed the process-wide cache as a previous login would have left it (no public API).
        OAuth2.token_cache._add_token(
            auth.state,
            plan.token["access_token"],
            float(plan.token["expires_at"]),
            plan.token["refresh_token"],
        )
        client = httpx.AsyncClient(
            transport=transport, trust_env=False, event_hooks=HOOKS, auth=auth
        )
        stack.push_async_callback(client.aclose)
        return lambda: client.get(f"{url}/api"), lambda: client.get(f"{url}/health", auth=None)

    raise ValueError(f"unknown row kind {plan.kind!r}")


def jwt_config(url: str) -> Any:
    from jwt_outbound import Endpoint, JWTConfig

    # The defaults: JSON login and {"refresh_token": ...} refresh, 60 s leeway, 30 s lease.
    return JWTConfig(login=Endpoint(f"{url}/token"), refresh=Endpoint(f"{url}/token"))


# -- in the parent ------------------------------------------------------------------------------


@dataclasses.dataclass
class Row:
    name: str
    outcomes: list[Outcome]
    stats: dict[str, Any]
    started: float  # the earliest burst start of the row's processes (Unix seconds)
    errors: list[str]
    per_process: list[tuple[int, list[Outcome]]]

    @property
    def latencies(self) -> list[float]:
        return [o[0] for o in self.outcomes]

    @property
    def waits(self) -> list[float]:
        return [o[1] for o in self.outcomes if not math.isnan(o[1])]

    @property
    def statuses(self) -> list[str]:
        return [o[2] for o in self.outcomes]


def run_row(name: str, plan: Plan, processes: int, control: httpx.Client) -> Row:
    """Start the processes, release them together, collect every outcome, read the stats."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(processes)
    results = ctx.Queue()
    control.post("/reset").raise_for_status()
    procs = [
        ctx.Process(target=worker, args=(plan, i, barrier, results), daemon=True)
        for i in range(processes)
    ]
    collected: list[tuple[int, list[Outcome], float, str | None]] = []
    try:
        for proc in procs:
            proc.start()
        deadline = time.monotonic() + ROW_TIMEOUT
        while len(collected) < processes and time.monotonic() < deadline:
            try:
                collected.append(results.get(timeout=1.0))
            except queue.Empty:
                if not any(proc.is_alive() for proc in procs):
                    break  # a process died without reporting; what is in the queue came in
    finally:
        for proc in procs:
            proc.join(timeout=10)
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
        results.close()
    errors = [f"process {i}: {error}" for i, _, _, error in collected if error]
    if len(collected) < processes:
        errors.append(f"{processes - len(collected)} process(es) reported nothing")
    stats = control.get("/stats").json()
    fine = sorted((i, outcomes, started) for i, outcomes, started, error in collected if not error)
    return Row(
        name=name,
        outcomes=[outcome for _, outcomes, _ in fine for outcome in outcomes],
        stats=stats,
        started=min((started for _, _, started in fine), default=0.0),
        errors=errors,
        per_process=[(i, outcomes) for i, outcomes, _ in fine],
    )


def password_token(control: httpx.Client) -> dict[str, Any]:
    """A token dict as an OAuth2 client keeps it, from a password-grant login now."""
    response = control.post(
        "/token", data={"grant_type": "password", "username": SUBJECT, "password": PASSWORD}
    )
    response.raise_for_status()
    body = response.json()
    return {**body, "expires_at": int(time.time()) + int(body["expires_in"])}


def expired_token(control: httpx.Client) -> dict[str, Any]:
    """A login whose access token is already expired, with a fresh, valid refresh token."""
    control.post("/reset", json={"access_ttl": -120}).raise_for_status()
    try:
        return password_token(control)
    finally:
        control.post("/reset", json={"access_ttl": 3600}).raise_for_status()


def seed_jwt_outbound(url: str, database_url: str, tenant: str, control: httpx.Client) -> None:
    """Log ``tenant`` in once while the issuer hands out born-expired access tokens."""
    from jwt_outbound import AsyncTokenManager, SQLTokenStore, migrate

    migrate(database_url)

    async def login() -> None:
        store = SQLTokenStore(database_url)
        async with AsyncTokenManager(jwt_config(url), store=store) as manager:
            await manager.login(tenant, {"username": SUBJECT, "password": PASSWORD})
        await store.aclose()

    control.post("/reset", json={"access_ttl": -120}).raise_for_status()
    try:
        asyncio.run(login())
    finally:
        control.post("/reset", json={"access_ttl": 3600}).raise_for_status()


def delete_tenant(database_url: str, tenant: str) -> None:
    from jwt_outbound import SQLTokenStore

    store = SQLTokenStore(database_url)
    try:
        store.delete(tenant)
    finally:
        store.close()


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.1f}"


def report(
    rows: list[Row], notes: list[str], baseline: Row | None, args: argparse.Namespace
) -> None:
    latency = args.endpoint_latency
    budget = latency + 0.1
    base = statistics.median(baseline.latencies) if baseline and baseline.latencies else math.nan
    base_p99 = percentile(baseline.latencies, 99) if baseline else math.nan
    total = args.processes * args.concurrency
    print(
        f"\nstampede: {args.processes} processes x {args.concurrency} concurrent GET /api on a "
        f"token that has just expired; the token endpoint answers after {latency * 1000:.0f} ms; "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"baseline: median latency of a plain authenticated GET /api with a valid static token, "
        f"under the same {args.processes} x {args.concurrency} burst = {ms(base)} ms"
    )
    header = (
        f"{'row':32} {'token calls':>11} {'refresh/login':>13} {'reuse':>5} {'OK / total':>11} "
        f"{'added p50':>9} {'added p99':>9} {'p99-base':>8} {'wait p50':>8} {'wait p99':>8} "
        f"{'endpoint':>8}"
    )
    print(f"\n{header}\n{'-' * len(header)}")
    for row in rows:
        grants = row.stats["grants"]
        split = f"{grants.get('refresh_token', 0)}/{grants.get('password', 0)}"
        extra = added(row, base)
        ok = sum(1 for status in row.statuses if status == "200")
        print(
            f"{row.name:32} {row.stats['token_calls']:>11} {split:>13} "
            f"{row.stats['refresh_reuse']:>5} {f'{ok} / {total}':>11} "
            f"{ms(percentile(extra, 50)):>9} {ms(percentile(extra, 99)):>9} "
            f"{ms(percentile(row.latencies, 99) - base_p99):>8} "
            f"{ms(percentile(row.waits, 50)):>8} {ms(percentile(row.waits, 99)):>8} "
            f"{latency * 1000:>8.0f}"
        )
    print(
        "ms, from the burst's start (all requests are asked for at once, each starting with an\n"
        "expired token, so every one waits). added = latency - the baseline's median;\n"
        "p99-base = p99 latency - the baseline's p99 latency; wait = until the request left with\n"
        "its token (the clients' request event hook), i.e. without the API's own queueing."
    )
    for note in notes:
        print(note)

    print(
        f"\ntargets for jwt_outbound: {args.processes} x {args.concurrency} -> 1 token-endpoint "
        f"call; waiters' added latency within the endpoint's latency + 100 ms "
        f"= {budget * 1000:.0f} ms"
    )
    for row in rows:
        if not row.name.startswith("jwt_outbound"):
            continue
        calls = row.stats["token_calls"]
        p99 = percentile(added(row, base), 99)
        print(
            f"  {row.name}: {calls} token-endpoint call(s) -> {verdict(calls == 1)}; "
            f"added p99 {ms(p99)} ms -> {verdict(p99 <= budget)}"
        )
    if baseline is not None and baseline.latencies:
        spread = base_p99 - base
        print(
            f"  (the baseline itself, with no token to wait for: p99 - median = {ms(spread)} ms "
            f"-> {verdict(spread <= budget)}; see p99-base and wait for what the token added)"
        )

    for row in rows:
        odd = Counter(status for status in row.statuses if status != "200")
        if odd:
            shown = ", ".join(f"{n} x {status}" for status, n in odd.most_common())
            print(f"{row.name}: non-200 outcomes: {shown}")
        for error in row.errors:
            print(f"{row.name}: {error}")
    if args.verbose:
        for row in rows:
            describe(row)


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def added(row: Row, base: float) -> list[float]:
    """Each request's latency beyond the baseline's median: what waiting for a token cost it."""
    return [lat - base for lat in row.latencies]


def describe(row: Row) -> None:
    """The token-endpoint calls on the burst's clock, and each process's latencies."""
    print(f"\n  {row.name}: token-endpoint calls, ms from the burst's start (received -> answered)")
    runs: list[list[dict[str, Any]]] = []  # consecutive calls alike, shown as one line
    for call in sorted(row.stats["calls"], key=lambda call: call["received"]):
        if runs and kind_of(runs[-1][0]) == kind_of(call):
            runs[-1].append(call)
        else:
            runs.append([call])
    for run in runs:
        first = (run[0]["received"] - row.started) * 1000
        last = (max(call["answered"] for call in run) - row.started) * 1000
        count = f"x{len(run)}" if len(run) > 1 else ""
        print(
            f"    {run[0]['grant']:13} {run[0]['outcome']:8} {count:>5} {first:7.1f} -> {last:7.1f}"
        )
    for index, outcomes in row.per_process:
        lats = [o[0] for o in outcomes]
        waits = [o[1] for o in outcomes if not math.isnan(o[1])]
        print(
            f"    process {index}: latency median {ms(statistics.median(lats))} max "
            f"{ms(max(lats))}; wait min {ms(min(waits, default=math.nan))} median "
            f"{ms(percentile(waits, 50))} max {ms(max(waits, default=math.nan))}"
        )


def kind_of(call: dict[str, Any]) -> tuple[str, str]:
    return call["grant"], call["outcome"]


def run(args: argparse.Namespace) -> None:
    postgres_url = args.postgres_url or os.environ.get("JWT_OUTBOUND_TEST_POSTGRES")
    rows: list[Row] = []
    notes: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix="stampede-") as workdir,
        server("bench._servers:issuer_app") as url,
        httpx.Client(base_url=url, trust_env=False, timeout=30) as control,
    ):
        control.post("/reset", json={"latency": args.endpoint_latency}).raise_for_status()
        common = {"url": url, "concurrency": args.concurrency}

        def measure(name: str, prepare: Callable[[], Plan], tries: int = 1) -> None:
            """One row; a row that fails is reported, and the others still run."""
            for attempt in range(1, tries + 1):
                try:
                    row = run_row(name, prepare(), args.processes, control)
                    if not row.outcomes:
                        raise RuntimeError("; ".join(row.errors) or "no process reported")
                except Exception as exc:
                    note = f"{name}: not measured: {type(exc).__name__}: {exc}"
                    if MISSING_TABLE in note:
                        note += " (a test suite on the same database drops the table)"
                        if attempt < tries:
                            notes.append(f"{note}; trying again")
                            continue
                    notes.append(note)
                else:
                    rows.append(row)
                return

        def jwt_outbound_plan(database_url: str, tenant: str) -> Callable[[], Plan]:
            def prepare() -> Plan:
                seed_jwt_outbound(url, database_url, tenant, control)
                return Plan("jwt_outbound", database_url=database_url, tenant=tenant, **common)

            return prepare

        measure(
            "plain httpx, valid static token",
            lambda: Plan("plain", token=password_token(control), **common),
        )
        sqlite_url = f"sqlite:///{Path(workdir) / 'tokens.db'}"
        measure("jwt_outbound, SQLite", jwt_outbound_plan(sqlite_url, unique_tenant()))
        if postgres_url:
            tenant = unique_tenant()
            try:
                measure(
                    "jwt_outbound, PostgreSQL", jwt_outbound_plan(postgres_url, tenant), tries=2
                )
            finally:
                try:
                    delete_tenant(postgres_url, tenant)
                except Exception as exc:
                    notes.append(
                        f"jwt_outbound, PostgreSQL: could not delete tenant {tenant!r}: {exc}"
                    )
        else:
            notes.append(
                "jwt_outbound, PostgreSQL: skipped; set JWT_OUTBOUND_TEST_POSTGRES or --postgres-url"
            )
        measure(
            "authlib AsyncOAuth2Client",
            lambda: Plan("authlib", token=expired_token(control), **common),
        )
        measure(
            "httpx-auth OAuth2 password",
            lambda: Plan("httpx_auth", token=expired_token(control), **common),
        )

    baseline = rows[0] if rows and rows[0].name.startswith("plain") else None
    report(rows, notes, baseline, args)


def unique_tenant() -> str:
    return f"stampede-{uuid.uuid4().hex[:12]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument(
        "--endpoint-latency", type=float, default=0.05, help="seconds the token endpoint takes"
    )
    parser.add_argument(
        "--postgres-url",
        help="PostgreSQL for the second jwt_outbound row (default: $JWT_OUTBOUND_TEST_POSTGRES)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="token calls and per-process latencies"
    )
    args = parser.parse_args()
    if args.processes < 1 or args.concurrency < 1 or args.endpoint_latency < 0:
        parser.error("--processes and --concurrency must be positive, the latency not negative")
    run(args)


if __name__ == "__main__":
    main()

"""The running platform: one object that owns the store, the sandboxes and the dispatcher.

Everything the gateway, the CLI and the benchmarks do goes through its methods.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from squall.engine.archive import Archives
from squall.engine.buckets.service import Buckets
from squall.engine.bus import Buses, Published
from squall.engine.bus_stats import BusStats
from squall.engine.calls import SandboxCalls
from squall.engine.deploy.bundle import (
    MAX_BUNDLE_BYTES,
    Bundle,
    bundles_dir,
    snapshot,
)
from squall.engine.deploy.canary import Canaries
from squall.engine.deploy.pools import VersionPools
from squall.engine.deploy.stages import staged
from squall.engine.deploy.stored import StoredBundles
from squall.engine.deploy.versions import VersionBook
from squall.engine.destinations import function_of, queue_name
from squall.engine.dispatcher import Dispatcher, RetrySettings
from squall.engine.effects import Effects, commit_or_hold
from squall.engine.event_store.projections import Projections, ProjectionSettings
from squall.engine.event_store.service import EventStoreService
from squall.engine.idempotency import Claims, expiry
from squall.engine.invoker import Invoker
from squall.engine.leader import Leadership, one_at_a_time
from squall.engine.node import ALL_ROLES, INVOKER, SCHEDULER, Coordinator, Service
from squall.engine.payload import check_payload
from squall.engine.queues.book import QueueBook
from squall.engine.queues.consumer import QueueConsumers
from squall.engine.replay import Replays, refuse_replay_marks, replay_ops
from squall.engine.rulebook import RuleBook
from squall.engine.schedules.delayed import DelayedPublisher, start_at
from squall.engine.schedules.scheduler import Scheduler
from squall.engine.schemas import SchemaRegistry
from squall.engine.streams.consumer import ConsumerSettings
from squall.engine.streams.log import Streams
from squall.engine.streams.triggers import StreamConsumers
from squall.engine.tables.changes import ChangeConsumers
from squall.engine.tables.service import Tables
from squall.engine.targets.letters import is_target_letter, redrive_ops
from squall.engine.targets.runner import TargetRunner
from squall.engine.waiting import wait_woken
from squall.engine.workflows import Workflows, WorkflowSettings
from squall.errors import ConfigError, InvalidInput, NotFound, SquallError
from squall.model.archive import REPLAY_EXTENSION
from squall.model.cloudevent import CloudEvent, with_traceparent
from squall.model.config import FunctionConfig, Manifest
from squall.model.deploys import Deployment, split_qualifier
from squall.model.ids import new_id
from squall.model.invocation import (
    DeadLetter,
    InvocationRecord,
    InvocationStatus,
    LogRow,
    Trigger,
)
from squall.model.rules import DEFAULT_BUS, RuleConfig
from squall.model.stages import DEFAULT_STAGE, scoped_secret
from squall.model.workflows import StepRecord, WorkflowRun
from squall.observe.cost import PriceTable
from squall.observe.hub import Observability
from squall.observe.retention import Retention
from squall.observe.trace_reads import Traces
from squall.observe.tracing import (
    Context,
    SpanKind,
    Tracing,
    current_traceparent,
    endpoint_from_env,
    traceparent_of,
)
from squall.runtime.launcher import Launcher
from squall.runtime.pool import Pool
from squall.runtime.zygotes import start_launchers
from squall.security.keys import open_control
from squall.storage import open_store
from squall.storage.control import ControlStore
from squall.storage.datadir import DataDirLock
from squall.storage.protocols import (
    AppendLogs,
    Delivery,
    Enqueue,
    Op,
    PutFunctionSettings,
    PutIdempotency,
    PutInvocation,
    Store,
    TakeDeadLetter,
)

if TYPE_CHECKING:
    from squall.storage.nats.queue import QueueSpec

log = logging.getLogger("squall")

REFRESH_S = 10.0  # a cluster node reloads the control plane at least this often
MAINTENANCE_S = 0.025  # deadline granularity; memory is watched every 4th tick


@dataclass(frozen=True)
class Prepared:
    """A deploy's code, loaded in its zygote: what a platform start serves."""

    bundle: Bundle
    launcher: Launcher
    manifest: Manifest
    kept: frozenset[str] = frozenset()  # functions a deploy kept, served from older bundles
    extra: Sequence[Op] = ()  # committed with the deployment (a canary's alias)


async def prepare(app_ref: str, data_dir: Path, limit: int = MAX_BUNDLE_BYTES) -> Prepared:
    """Snapshot ``app_ref``'s directory and load it: the code of a local deploy."""
    bundle = await asyncio.to_thread(snapshot, app_ref, data_dir, limit)
    return await load_bundle(bundle, data_dir)


async def load_bundle(bundle: Bundle, data_dir: Path) -> Prepared:
    """Start the bundle's zygotes (one per dependency environment, built if need be)."""
    launcher, loaded = await start_launchers(bundle.app_path, data_dir)
    return Prepared(bundle, launcher, loaded.manifest)


async def restore(book: VersionBook, bundles: StoredBundles) -> Prepared:
    """The store's last deployment, loaded again (``squall up`` without an app)."""
    data_dir = bundles.data_dir
    last = book.last
    if last is None:
        raise ConfigError(
            f"nothing is deployed in {str(data_dir)!r}: give an app (squall up app.py), or"
            " start with one and deploy to it (squall deploy app.py --to URL)",
            field="app",
        )
    bundle = await bundles.find(last.bundle, last.app_ref)
    if bundle is None:
        also = " and from the store" if bundles.shared else ""
        raise ConfigError(
            f"the last deployment's bundle {last.bundle} is missing from"
            f" {str(bundles_dir(data_dir))!r}{also}: deploy the app again",
            field="app",
        )
    launcher, loaded = await start_launchers(bundle.app_path, data_dir)
    kept = frozenset(
        name
        for name, number in last.versions.items()
        if book.get(name, number).bundle != last.bundle
    )
    manifest = msgspec.structs.replace(last.manifest, version=loaded.manifest.version)
    return Prepared(bundle, launcher, manifest, kept)


@dataclass(frozen=True)
class Deployed:
    """The code a platform serves: its bundle, the version book, each function's version."""

    bundle: Bundle
    book: VersionBook
    serving: dict[str, int]
    bundles: StoredBundles


def _qualified(name: str, qualifier: str | None) -> tuple[str, str | None]:
    if qualifier is None and ":" in name:
        return split_qualifier(name)
    return name, qualifier


@dataclass
class PlatformConfig:
    app: str
    data_dir: Path = field(default_factory=lambda: Path(".squall"))
    max_sync_payload: int = 6 * 1024 * 1024
    max_async_payload: int = 256 * 1024
    sync_wait_s: float = 2.0
    retry_base_s: float = 1.0
    retry_cap_s: float = 300.0
    store: str | None = None  # defaults to sqlite under data_dir
    prices: PriceTable = field(default_factory=PriceTable)  # metering (AWS Lambda x86 default)
    log_retention_s: float = 7 * 86400.0  # log lines older than this are swept
    trace_retention_s: float = 7 * 86400.0  # traces that started before this are swept
    retention_sweep_s: float = 60.0  # how often the retention sweep runs
    trace_sample: float = 1.0  # share of new traces recorded (0..1); children follow parents
    otlp_endpoint: str | None = None  # also export spans over OTLP/HTTP (SQUALL_OTLP_ENDPOINT)
    deployed_by: str = "local"  # who a deploy's new versions are recorded as made by
    stage: str = DEFAULT_STAGE  # the environment this platform serves (squall up --stage)
    max_bundle_bytes: int = MAX_BUNDLE_BYTES
    bus: str | None = None  # nats://…: a cluster node, its deliveries on JetStream
    roles: frozenset[str] = ALL_ROLES  # what this node does (see engine.node)

    @property
    def clustered(self) -> bool:
        return self.bus is not None


class Platform:
    control: ControlStore  # API keys and secrets
    _lock: DataDirLock
    _leasing: asyncio.Task[None]  # the dispatcher's lease loop
    bootstrap_key: str | None = None  # the admin key this start created, to show once
    kept: frozenset[str] = frozenset()  # functions served from older bundles

    def __init__(
        self,
        config: PlatformConfig,
        manifest: Manifest,
        launcher: Launcher,
        store: Store,
        deployed: Deployed,
    ) -> None:
        self.config = config
        self.manifest = manifest
        self._store = store
        self.bundle = deployed.bundle
        self.stored_bundles = deployed.bundles  # bundles kept in a shared store, for others
        self._functions = {fn.name: fn for fn in manifest.functions}
        self._settings: dict[str, dict[str, Any]] = {}  # changed through the API, by function
        self._calls = SandboxCalls(self)  # ctx.publish, send, invoke … from the sandboxes
        self._pools = {
            fn.name: self._make_pool(fn, launcher)
            for fn in manifest.functions
            if deployed.book.get(fn.name, deployed.serving[fn.name]).bundle == self.bundle.hash
        }
        for name, pool in self._pools.items():
            pool.version = deployed.serving[name]
        self.versions = VersionPools(
            deployed.book,
            self._pools,
            deployed.serving,
            deployed.bundle.hash,
            launcher,
            self._make_pool,
            deployed.bundles,
        )
        self._running: dict[str, InvocationRecord] = {}
        self._claims = Claims(store)
        self._invoker = Invoker(self.versions)
        self._buses = Buses(manifest.rules, manifest.version, lambda: self._functions)
        self.rule_book = RuleBook(
            store,
            self._buses,
            lambda: self._functions,
            lambda: [queue.name for queue in self.queues.all()],
        )
        self._targets = TargetRunner.create(
            store,
            self._forward,
            self._send_target,
            config.retry_base_s,
            config.retry_cap_s,
        )
        self.bus_stats = BusStats(self._buses.names)  # in memory: reset by a restart
        self.schemas = SchemaRegistry(store)
        self.archives = Archives(store, lambda bus: self._buses.knows(bus))
        self.replays = Replays(
            store, self.archives, lambda bus: self._buses.knows(bus), self.publish_replayed
        )
        self.streams = Streams(store, manifest.streams, manifest.stream_triggers)
        self._stream_consumers = StreamConsumers(
            store,
            self.streams,
            manifest.stream_triggers,
            ConsumerSettings(
                invoke=lambda fn, payload, also: self.invoke(
                    fn, payload, trigger=Trigger.STREAM, also=also
                ),
                wake=lambda fn: self._dispatcher.wake(fn),
                max_payload=config.max_sync_payload,
                retry_base_s=config.retry_base_s,
                retry_cap_s=config.retry_cap_s,
            ),
        )
        self.tables = Tables(store, manifest.tables, lambda table: self._changes.notify(table))
        self._changes = ChangeConsumers(
            store,
            manifest.tables,
            manifest.change_triggers,
            ConsumerSettings(
                invoke=lambda fn, payload, also: self.invoke(
                    fn, payload, trigger=Trigger.STREAM, also=also
                ),
                wake=lambda fn: self._dispatcher.wake(fn),
                max_payload=config.max_sync_payload,
                retry_base_s=config.retry_base_s,
                retry_cap_s=config.retry_cap_s,
            ),
        )
        self.tracing = Tracing(
            store,
            service=manifest.app,
            sample=config.trace_sample,
            otlp_endpoint=config.otlp_endpoint or endpoint_from_env(),
        )
        self._invoker.tracing = self.tracing
        self._targets.tracing = self.tracing
        self.traces = Traces(store, self.tracing)
        self.retention = Retention(
            store,
            logs_s=config.log_retention_s,
            traces_s=config.trace_retention_s,
            every_s=config.retention_sweep_s,
        )
        self.workflows = Workflows(
            store,
            manifest.workflows,
            WorkflowSettings(
                invoke=lambda name, payload, version: self.invoke(
                    name,
                    payload,
                    trigger=Trigger.WORKFLOW,
                    qualifier=None if version is None else str(version),
                ),
                timeout_s=lambda name: float(self.function(name).timeout_s),
                concurrency=lambda name: self.function(name).concurrency,
                max_input=config.max_async_payload,
                retry_base_s=config.retry_base_s,
                retry_cap_s=config.retry_cap_s,
                tracing=self.tracing,
            ),
        )
        self._dispatcher = Dispatcher(
            store,
            self._invoker,
            lambda: self._functions,
            self._running,
            RetrySettings(config.retry_base_s, config.retry_cap_s),
            starter=self.workflows,
        )
        self.scheduler = Scheduler(
            store,
            manifest.schedules,
            manifest.version,
            self._dispatcher.wake,
            functions=lambda: self._functions,
        )
        # One scheduler fires ticks among the processes sharing the store.
        self.leadership = Leadership(store, "scheduler")
        self._delayed = DelayedPublisher(store, self.publish)
        self.queues = QueueBook(store, manifest.queues)
        self._queue_consumers = QueueConsumers(
            manifest.queue_triggers,
            self.queues,
            store,
            self._invoker,
            lambda: self._functions,
            self._running,
            starter=self.workflows,
        )
        self.buckets = Buckets(
            store, config.data_dir, manifest.buckets, self.event_ops, manifest.app
        )
        self.observability = Observability(
            store,
            self._pools,
            self.bus_stats,
            self.queues,
            self.streams,
            prices=config.prices,
            budgets=manifest.budgets,
            alerts=manifest.alerts,
            functions=lambda: list(self._functions),
            publish=self.publish,
            stop=self._stop_function,
        )
        self.canaries = Canaries(store, deployed.book, self.publish)
        observe = self.observability.observe

        def observed(record: InvocationRecord) -> None:
            observe(record)
            self.canaries.observe(record)

        self._invoker.observe = observed
        self.events_store = EventStoreService(
            store, lambda events: self.event_ops(events), lambda: self.projections.wake()
        )
        self.projections = Projections(
            store,
            manifest.projections,
            ProjectionSettings(
                invoke=lambda fn, payload, also: self.invoke(
                    fn, payload, trigger=Trigger.PROJECTION, also=also
                ),
                set_generation=self.tables.set_generation,
                max_payload=config.max_sync_payload,
                retry_base_s=config.retry_base_s,
                retry_cap_s=config.retry_cap_s,
            ),
        )
        self.observability.projection_status = self.projections.status
        self._tasks: list[asyncio.Task[None]] = []
        self._refresh_wanted = asyncio.Event()
        self.started = False

    # --- lifecycle -----------------------------------------------------------------------

    @classmethod
    async def start(cls, config: PlatformConfig, prepared: Prepared | None = None) -> Platform:
        """Import the app in its zygote, open the store, recover leases, start serving.

        The code served is ``prepared`` (a deploy's), else a snapshot of ``config.app``, else
        (no app given) the data dir's last deployment.
        """
        lock = DataDirLock(config.data_dir)
        try:
            return await cls._start(config, lock, prepared)
        except BaseException:
            lock.release()
            raise

    def _make_pool(self, config: FunctionConfig, launcher: Launcher) -> Pool:
        return Pool(config, launcher, self._calls.on_call, self._secret_values)

    @classmethod
    async def _start(
        cls, config: PlatformConfig, lock: DataDirLock, prepared: Prepared | None
    ) -> Platform:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        from_app = prepared is None and bool(config.app)  # not a deploy's code: the image's
        if from_app:
            prepared = await prepare(config.app, config.data_dir, config.max_bundle_bytes)
        try:
            store = await open_store(
                config.store or str(config.data_dir / "squall.db"), bus=config.bus
            )
        except BaseException:
            if prepared is not None:
                await prepared.launcher.close()
            raise
        control: ControlStore | None = None
        try:
            book = VersionBook(store)
            bundles = StoredBundles(store, config.data_dir)
            # Nodes of a cluster starting together take turns: each finds the admin key and
            # the versions the first made instead of making them twice.
            async with one_at_a_time(store, "start", enabled=config.clustered):
                control, bootstrap_key = await open_control(config.data_dir, config.store)
                await book.load()
                if (
                    config.clustered
                    and from_app
                    and prepared is not None
                    and book.superseded(prepared.bundle.hash)
                ):
                    # A node restarting from an image whose app a later `squall deploy`
                    # replaced: it serves the cluster's last deployment rather than
                    # deploying the older code again (which every node would follow).
                    log.info("the app's bundle %s was deployed before and replaced since:"
                             " serving the last deployment", prepared.bundle.hash)
                    await prepared.launcher.close()
                    prepared = None
                if prepared is None:
                    prepared = await restore(book, bundles)
                prepared = dataclasses.replace(
                    prepared, manifest=staged(prepared.manifest, config.stage)
                )
                await book.record(
                    prepared.manifest,
                    prepared.bundle.hash,
                    prepared.bundle.app_ref,
                    config.deployed_by,
                    kept=prepared.kept,
                    extra=prepared.extra,
                    code=await bundles.keep(prepared.bundle),
                )
        except BaseException:
            await store.close()
            if control is not None:
                await control.close()
            if prepared is not None:
                await prepared.launcher.close()
            raise
        assert book.last is not None  # record() made one, or found an equal one
        serving = dict(book.last.versions)
        deployed = Deployed(prepared.bundle, book, serving, bundles)
        platform = cls(config, prepared.manifest, prepared.launcher, store, deployed)
        platform.kept = prepared.kept
        for name in prepared.kept:  # served from an older bundle: start its zygote now
            await platform.versions.adopt(name)
        platform.control, platform.bootstrap_key = control, bootstrap_key
        platform._lock = lock
        await platform.schemas.load()
        await platform.archives.load()
        await platform._load_settings()
        if config.clustered:
            await platform._load_node()
            return platform
        recovered = await store.recover()
        if recovered:
            log.info("recovered %d deliveries left running by a previous process", recovered)
        await platform.rule_book.load()
        await platform.streams.load()
        await platform._stream_consumers.start()
        await platform.tables.load()
        await platform._changes.start()
        await platform.leadership.try_acquire()
        await platform.scheduler.load()
        await platform.queues.load()
        await platform.buckets.load()
        await platform.workflows.load()
        await platform.projections.start()
        await platform.canaries.load()
        platform._leasing = asyncio.create_task(platform._dispatcher.run())
        platform._tasks = [
            asyncio.create_task(platform.buckets.sweep_forever()),
            asyncio.create_task(platform._queue_consumers.run()),
            asyncio.create_task(platform.queues.sweep_forever()),
            platform._leasing,
            asyncio.create_task(platform._maintain()),
            asyncio.create_task(platform._targets.run()),
            asyncio.create_task(platform.archives.sweep_forever()),
            asyncio.create_task(platform.streams.trim_forever()),
            asyncio.create_task(platform.tables.sweep_forever()),
            asyncio.create_task(platform.leadership.run()),
            asyncio.create_task(platform.scheduler.run(platform.leadership)),
            asyncio.create_task(platform._delayed.run()),
            asyncio.create_task(platform.workflows.run()),
            asyncio.create_task(platform.retention.sweep_forever()),
            asyncio.create_task(platform.canaries.run()),
        ]
        await platform.observability.budgets.load()
        platform._tasks += [asyncio.create_task(loop) for loop in platform.observability.tasks()]
        platform.started = True
        return platform

    async def _load_node(self) -> None:
        """Start as a cluster node: load the shared state, then run this node's roles (the
        coordinator's duties only while it holds the lease, see ``engine.node``)."""
        from squall.storage.nats.brokered import BrokeredStore

        store = self._store
        assert isinstance(store, BrokeredStore)
        roles = self.config.roles
        store.specs = self._queue_spec
        store.on_wake(self._woken)
        await self.rule_book.load()
        await self.streams.load()
        await self.tables.load()
        await self.scheduler.load()
        await self.queues.load()
        await self.buckets.load()
        await self.workflows.load()
        await self.canaries.load()
        await self.observability.budgets.load()
        await store.declare([queue_name(name) for name in self._functions])
        self.versions.prefetch()

        async def take_over() -> None:  # a dead coordinator's PostgreSQL leases run again
            recovered = await store.recover()
            if recovered:
                log.info("recovered %d deliveries the previous coordinator held", recovered)

        self.coordinator = Coordinator(
            self.leadership,
            take_over,
            [
                Service(self._stream_consumers.start, self._stream_consumers.stop),
                Service(self._changes.start, self._changes.stop),
                Service(self.projections.start, self.projections.stop),
            ],
            [
                self.buckets.sweep_forever,
                self._queue_consumers.run,
                self.queues.sweep_forever,
                self._targets.run,
                self.archives.sweep_forever,
                self.streams.trim_forever,
                self.tables.sweep_forever,
                lambda: self.scheduler.run(self.leadership),
                self._delayed.run,
                self.workflows.run,
                self.retention.sweep_forever,
                self.canaries.run,
                store.relay.run,
                *self.observability.loops(),
            ],
        )
        self._leasing = asyncio.create_task(self._dispatcher.run() if INVOKER in roles else _idle())
        self._tasks = [self._leasing, asyncio.create_task(self._maintain())]
        if SCHEDULER in roles:
            await self.leadership.try_acquire()
            await self.coordinator.begin()
            self._tasks += [
                asyncio.create_task(self.leadership.run()),
                asyncio.create_task(self.coordinator.run()),
            ]
        await store.listen()
        await store.watch_control(self._refresh_soon, self.leadership.holder)
        self._tasks.append(asyncio.create_task(self._refresh_forever()))
        self.started = True

    def _woken(self, queue: str) -> None:
        """Another node published on ``queue``: a function's deliveries, or a user queue's
        messages (whose long-polling receivers here return at once)."""
        from squall.storage.nats.messages import queue_of

        name = queue_of(queue)
        if name is not None:
            self.queues.signals.notify(name)
        else:
            self._dispatcher.wake(function_of(queue))

    async def control_changed(self) -> None:
        """This node changed the control plane: the others reload it now (cluster only)."""
        if self.config.clustered:
            from squall.storage.nats.brokered import BrokeredStore

            assert isinstance(self._store, BrokeredStore)
            await self._store.announce_control(self.leadership.holder)

    def _refresh_soon(self) -> None:
        self._refresh_wanted.set()

    async def _refresh_forever(self) -> None:
        """Reload what other nodes may have changed: when told, and every REFRESH_S anyway
        (an announcement is not durable)."""
        while True:
            await wait_woken(self._refresh_wanted, REFRESH_S)
            self._refresh_wanted.clear()
            try:
                await self.refresh()
            except Exception as exc:  # the store is away: the next round catches up
                log.warning("reloading the control plane failed: %s", exc)

    async def refresh(self) -> None:
        """Reload rules, schedules, queues, streams, tables, buckets, versions, aliases and
        function settings from the store."""
        await self.rule_book.refresh()
        await self.scheduler.refresh()
        await self.queues.refresh()
        await self.streams.refresh()
        await self.tables.refresh()
        await self.buckets.refresh()
        await self.versions.book.load()
        self.versions.prefetch()
        await self._load_settings()

    def _queue_spec(self, queue: str) -> QueueSpec:
        from squall.storage.nats.queue import QueueSpec

        config = self._functions.get(function_of(queue))
        return QueueSpec(name=queue, retries=config.retries if config else 2)

    async def stop(self) -> None:
        self.started = False
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._stream_consumers.stop()
        await self._changes.stop()
        await self.projections.stop()
        await self.workflows.stop()
        await self.replays.close()
        await self._dispatcher.stop()
        await self._targets.stop()
        await self._queue_consumers.stop()
        await self.versions.close()
        await self.tracing.shutdown()
        await self._store.close()
        await self.control.close()
        self._lock.release()

    async def _maintain(self) -> None:
        """Memory watchdog, scale-in of idle sandboxes and keeping min_instances warm."""
        tick = 0
        while True:
            await asyncio.sleep(MAINTENANCE_S)
            tick += 1
            now = time.monotonic()
            for pool in self.versions.all():
                pool.enforce_deadlines(now)
                if tick % 4 == 0:
                    pool.watch_memory()
                if tick % 40 == 0:
                    pool.reap(now)
                if pool.size < pool.config.min_instances:
                    await pool.prewarm()
            if tick % 2400 == 0:  # once a minute
                await self.versions.reap()

    # --- functions -----------------------------------------------------------------------

    async def _secret_values(self, names: Sequence[str]) -> dict[str, str]:
        """Each secret as the stage has it (``prod__DB_URL``), else as the app has it."""
        stage = self.config.stage
        found = await self.control.secret_values(
            [*names, *(scoped_secret(stage, name) for name in names)]
        )
        values = {}
        for name in names:
            value = found.get(scoped_secret(stage, name), found.get(name))
            if value is not None:
                values[name] = value
        return values

    def function(self, name: str) -> FunctionConfig:
        try:
            return self._functions[name]
        except KeyError:
            known = ", ".join(sorted(self._functions))
            raise NotFound(
                f"function {name!r} does not exist (functions: {known})",
                field="function",
                function=name,
            ) from None

    @property
    def functions_by_name(self) -> dict[str, FunctionConfig]:
        return self._functions

    def functions(self) -> list[FunctionConfig]:
        return list(self._functions.values())

    def function_stats(self, name: str) -> dict[str, int]:
        pools = self.versions.of(self.function(name).name)
        warm = sum(pool.warm for pool in pools)
        busy = sum(len(pool.busy) for pool in pools)
        return {
            "warm": warm,
            "busy": busy,
            "starting": sum(pool.size for pool in pools) - warm - busy,
            "cold_starts": sum(pool.cold_starts for pool in pools),
        }

    async def update_function(self, name: str, changes: dict[str, Any]) -> FunctionConfig:
        """Change settings of ``name``: kept in the store, so they hold across restarts and
        on every node of a cluster (which reload them), over what the code declares."""
        config = self.function(name).updated(changes)
        for target in (config.on_success, config.on_failure):
            if target is not None:
                self.function(target)
        kept = {**self._settings.get(name, {}), **changes}
        await self._store.commit([PutFunctionSettings(name, msgspec.json.encode(kept))])
        self._settings[name] = kept
        self._reconfigure(name, config, changes)
        await self.control_changed()
        return config

    def _reconfigure(self, name: str, config: FunctionConfig, changes: dict[str, Any]) -> None:
        self._functions[name] = config
        for pool in self.versions.of(name):
            # Older versions keep their own code's settings; the changes apply to them too.
            pool.reconfigure(config if pool is self._pools[name] else pool.config.updated(changes))

    async def _load_settings(self) -> None:
        """Apply the settings changed through the API (at start, and on a cluster node
        whenever another node may have changed them)."""
        declared = {fn.name: fn for fn in self.manifest.functions}
        for name, blob in (await self._store.function_settings()).items():
            code = declared.get(name)
            if code is None:  # the function is gone from the code
                continue
            try:
                changes = msgspec.json.decode(blob, type=dict[str, Any])
                config = msgspec.convert(
                    {**msgspec.structs.asdict(code), **changes}, FunctionConfig
                )
                config.validate()
                for target in (config.on_success, config.on_failure):
                    if target is not None and target not in declared:
                        raise ConfigError(f"{target!r} names no function of the app")
            except (msgspec.ValidationError, msgspec.DecodeError, SquallError) as exc:
                log.warning("function %r: settings changed through the API no longer apply"
                            " to its code, so its code's stand: %s", name, exc)
                continue
            self._settings[name] = changes
            if config != self._functions[name]:
                self._reconfigure(name, config, changes)

    async def _stop_function(self, name: str) -> None:
        """A budget with ``stop`` was crossed: no new invocations until raised again."""
        await self.update_function(name, {"concurrency": 0, "min_instances": 0})

    async def scale_to_zero(self, name: str) -> None:
        for pool in self.versions.of(self.function(name).name):
            pool.scale_to_zero()

    # --- invoking ------------------------------------------------------------------------

    async def invoke(
        self,
        name: str,
        payload: bytes,
        *,
        idempotency_key: str | None = None,
        trigger: str = Trigger.SYNC,
        kind: str = "json",
        request_id: str | None = None,
        invocation_id: str | None = None,
        also: Callable[[InvocationRecord], Sequence[Op]] | None = None,
        parent: Context | None = None,
        qualifier: str | None = None,
    ) -> InvocationRecord:
        """Run a function now and return its record (a failure is in ``record.error``).

        ``name`` may carry a qualifier (``resize:live``, ``resize:7``); unqualified calls go
        to the ``live`` alias when there is one, else to the newest version.

        ``kind="http"`` marks ``payload`` as a JSON-encoded HttpRequest built by the
        gateway (the handler then gets a ``squall.Request``). ``also(record)`` gives ops to
        commit in the invocation's own unit (a stream consumer's checkpoint).
        """
        name, qualifier = _qualified(name, qualifier)
        config = self.function(name)
        payload = check_payload(payload, self.config.max_sync_payload, "sync", kind)
        self.versions.choose(name, qualifier)  # an unknown alias or version: 404 before work
        if idempotency_key is not None:
            existing = await self._claims.claim(name, idempotency_key)
            if existing is not None:
                return await self._finished_record(existing)
        record = InvocationRecord(
            id=invocation_id or new_id(),
            function=name,
            version="",
            trigger=trigger,
            status=InvocationStatus.RUNNING,
            attempt=1,
            created_at=time.time(),
            idempotency_key=idempotency_key,
            request_id=request_id,
        )
        self._running[record.id] = record
        effects = Effects()
        try:
            await self._invoker.run(
                config,
                record,
                payload,
                wait_s=self.config.sync_wait_s,
                kind=kind,
                effects=effects,
                parent=parent,
                qualifier=qualifier,
            )
        except BaseException:
            effects.discarded()
            self._claims.release(name, idempotency_key, None)
            raise
        finally:
            self._running.pop(record.id, None)
        await self._commit_sync(record, effects, idempotency_key, also)
        return record

    async def _commit_sync(
        self,
        record: InvocationRecord,
        effects: Effects,
        idempotency_key: str | None,
        also: Callable[[InvocationRecord], Sequence[Op]] | None,
    ) -> None:
        """Record a sync invocation, with its effects when it succeeded.

        A record nobody waits on rides a lazy group commit; effects and idempotency claims
        are committed before the caller hears the result. Effects that cannot commit (an
        item they wrote changed meanwhile) turn the invocation into a failure.
        """
        name = record.function

        def record_ops() -> list[Op]:
            ops: list[Op] = [PutInvocation(record)]
            if record.logs:
                ops.append(
                    AppendLogs(record.id, name, record.logs, record.request_id, record.version)
                )
            if idempotency_key is not None:
                ops.append(PutIdempotency(name, idempotency_key, record.id, expiry()))
            if also is not None:
                ops += also(record)
            return ops

        try:
            if record.status != InvocationStatus.SUCCEEDED or not effects:
                effects.discarded()
                if idempotency_key is None:
                    self._store.commit_soon(record_ops())
                    return
                await self._store.commit(record_ops())
                return
            try:
                await self._store.commit(record_ops() + effects.ops())
            except SquallError as exc:
                effects.discarded()
                record.status = InvocationStatus.FAILED
                record.error = exc.to_dict()
                record.result = None
                record.response = None
                await self._store.commit(record_ops())
                return
            effects.committed()
        finally:
            if idempotency_key is not None:
                self._claims.release(name, idempotency_key, record.id)

    async def invoke_async(
        self,
        name: str,
        payload: bytes,
        *,
        idempotency_key: str | None = None,
        trigger: str = Trigger.ASYNC,
        kind: str = "json",
        request_id: str | None = None,
        available_at: float | None = None,
        effects: Effects | None = None,
        traceparent: str | None = None,
        qualifier: str | None = None,
    ) -> InvocationRecord:
        """Durably queue an invocation (to run from ``available_at``, epoch s, if given);
        returns once it is committed to the store, or held in ``effects`` (an async invoke
        from a function, queued with the caller's success). It runs in the trace of
        ``traceparent`` (default: the current span's). ``name`` may carry a qualifier, as
        for ``invoke``; the version is chosen when the invocation runs."""
        name, qualifier = _qualified(name, qualifier)
        self.function(name)
        self.versions.choose(name, qualifier)
        payload = check_payload(payload, self.config.max_async_payload, "async", kind)
        now = time.time()
        start = now if available_at is None else start_at(available_at, now)
        if idempotency_key is not None:
            existing = await self._claims.claim(name, idempotency_key)
            if existing is not None:
                return await self.get_invocation(existing)
        record = InvocationRecord(
            id=new_id(),
            function=name,
            version="",
            trigger=trigger,
            status=InvocationStatus.QUEUED,
            created_at=now,
            idempotency_key=idempotency_key,
            request_id=request_id,
        )
        headers = {"trigger": str(trigger), "kind": kind}
        if qualifier is not None:
            headers["qualifier"] = qualifier
        if request_id is not None:
            headers["request_id"] = request_id
        traceparent = traceparent or current_traceparent()
        if traceparent is not None:
            headers["traceparent"] = traceparent
        ops: list[Op] = [PutInvocation(record)]
        if idempotency_key is not None:
            headers["idempotency_key"] = idempotency_key
            ops.append(PutIdempotency(name, idempotency_key, record.id, expiry()))
        delivery = Delivery(
            id=record.id,
            queue=queue_name(name),
            payload=payload,
            invocation_id=record.id,
            enqueued_at=start,  # a delayed invocation's age counts from when it is due
            available_at=start,
            headers=headers,
        )
        ops.append(Enqueue(delivery))
        if effects is not None:
            assert idempotency_key is None, "a held invocation takes no idempotency key"
            effects.add(ops, after=lambda: self._dispatcher.wake(name))
            return record
        try:
            await self._store.commit(ops)
        except BaseException:
            self._claims.release(name, idempotency_key, None)
            raise
        self._claims.release(name, idempotency_key, record.id)
        self._dispatcher.wake(name)
        return record

    async def _finished_record(self, invocation_id: str) -> InvocationRecord:
        while True:
            record = await self.get_invocation(invocation_id)
            if InvocationStatus(record.status).finished:
                return record
            await asyncio.sleep(0.05)

    # --- events --------------------------------------------------------------------------

    async def publish(
        self,
        events: Sequence[CloudEvent],
        *,
        bus: str = DEFAULT_BUS,
        effects: Effects | None = None,
        parent: Context | None = None,
    ) -> list[Published]:
        """Deliver ``events`` to every matching rule of ``bus``, durably, in one commit
        (or, held in ``effects``, with the success of the invocation that publishes them).

        A publish span is made under ``parent`` (default: the current span); given a
        ``parent`` (a function's publish), the span also becomes the ``traceparent`` of each
        event that does not carry one already, so its deliveries continue the trace.

        An event whose (source, id) was published within the dedup window is dropped. Data
        its registered schema rejects fails the whole call (nothing is delivered); the bus's
        archives keep what was delivered, in the same unit.
        """
        if not self._buses.knows(bus):
            raise NotFound(
                f"bus {bus!r} does not exist (buses: {', '.join(self._buses.names)})",
                field="bus",
                bus=bus,
            )
        refuse_replay_marks(events)
        self.schemas.check(events)
        span = self.tracing.start(
            f"publish {bus}",
            parent,
            kind=SpanKind.PRODUCER,
            attributes={
                "squall.bus": bus,
                "squall.event_types": sorted({event.type for event in events}),
                "squall.events": len(events),
            },
        )
        try:
            stamp = traceparent_of(span) if parent is not None else None
            return await self._publish(events, bus, effects, stamp)
        finally:
            span.end()

    async def _publish(
        self,
        events: Sequence[CloudEvent],
        bus: str,
        effects: Effects | None,
        traceparent: str | None,
    ) -> list[Published]:
        if traceparent is not None:
            events = [
                event if event.traceparent else with_traceparent(event, traceparent)
                for event in events
            ]
        keys = [(event.source, event.id) for event in events]
        seen = await self._store.seen_events(keys, time.time())
        ops, outcomes, queues = self._buses.route(bus, events, seen)
        ops += self.archives.ops_for(bus, events, outcomes)
        ops += self.workflows.event_ops(
            bus, [e for e, o in zip(events, outcomes, strict=True) if not o.duplicate]
        )

        def delivered() -> None:
            self.bus_stats.count(bus, outcomes)
            for queue in queues:
                self._wake(queue)

        await commit_or_hold(self._store, effects, ops, after=delivered)
        return outcomes

    def event_ops(
        self, events: Sequence[CloudEvent], bus: str = DEFAULT_BUS
    ) -> tuple[list[Op], Callable[[], None]]:
        """The ops that publish fresh ``events`` (new ids: no dedup lookup) for a caller to
        commit in its own unit (an object's metadata and its event land together), and what
        to run once that unit landed."""
        self.schemas.check(events)
        ops, outcomes, queues = self._buses.route(bus, events, set())
        ops += self.archives.ops_for(bus, events, outcomes)

        def landed() -> None:
            self.bus_stats.count(bus, outcomes)
            for queue in queues:
                self._wake(queue)

        return ops, landed

    def _wake(self, queue: str) -> None:
        if queue.startswith("fn:"):
            self._dispatcher.wake(function_of(queue))
        else:
            self._targets.wake(queue)

    async def publish_replayed(self, events: list[CloudEvent], bus: str, replay: str) -> None:
        """Route replayed events (see ``engine.replay``): no dedup, no archive, no schema check."""
        ops, _, queues = self._buses.route(bus, events, set())
        await self._store.commit(replay_ops(ops, replay))
        for queue in queues:
            self._wake(queue)

    async def _forward(self, events: Sequence[CloudEvent], bus: str) -> None:
        """A bus target's delivery: a replayed event stays a replay on the next bus."""
        replay = events[0].extensions.get(REPLAY_EXTENSION) if events else None
        if isinstance(replay, str):
            await self.publish_replayed(list(events), bus, replay)
        else:
            await self.publish(events, bus=bus)

    async def _send_target(self, queue: str, body: bytes, group_id: str, dedup_id: str) -> None:
        """A queue target's delivery: group and dedup ids apply to FIFO queues only."""
        fifo = self.queues.get(queue).fifo
        await self.queues.send(
            queue,
            body,
            group_id=group_id if fifo else None,
            dedup_id=dedup_id if fifo else None,
            traceparent=current_traceparent(),
        )

    def rules(self) -> list[RuleConfig]:
        return self._buses.rules()

    def has_bus(self, bus: str) -> bool:
        return self._buses.knows(bus)

    async def delay(self, ops: Sequence[Op], effects: Effects | None = None) -> None:
        """Commit delayed work (``publish_at``), or hold it in ``effects``, and let its
        publisher know once it lands."""
        await commit_or_hold(self._store, effects, ops, after=self._delayed.wake)

    # --- workflows -----------------------------------------------------------------------

    async def start_workflow(
        self, name: str, input: Any = None, id: str | None = None
    ) -> WorkflowRun:
        """Start a run of workflow ``name``; ``id`` is its idempotency key (a run of that id
        is returned as it is). ``workflows.start`` also tells whether it was created."""
        run, _ = await self.workflows.start(name, input, id)
        return run

    async def workflow_history(self, run_id: str) -> list[StepRecord]:
        return await self.workflows.history(run_id)

    # --- reading -------------------------------------------------------------------------

    async def list_deployments(self, limit: int = 50) -> list[Deployment]:
        return await self._store.list_deployments(limit)

    async def get_invocation(self, invocation_id: str) -> InvocationRecord:
        running = self._running.get(invocation_id)
        if running is not None:
            return running
        await self._store.commit(())  # a barrier: records waiting for a group commit land
        record = await self._store.get_invocation(invocation_id)
        if record is None:
            raise NotFound(f"invocation {invocation_id!r} does not exist", field="invocation_id")
        return record

    async def list_invocations(
        self,
        function: str | None = None,
        status: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[InvocationRecord]:
        if status is not None and status not in InvocationStatus.__members__.values():
            allowed = ", ".join(s.value for s in InvocationStatus)
            raise InvalidInput(f"status {status!r} is unknown (one of {allowed})", field="status")
        await self._store.commit(())
        return await self._store.list_invocations(
            function=function, status=status, limit=limit, before=before
        )

    async def list_logs(
        self,
        function: str | None = None,
        invocation_id: str | None = None,
        since: float | None = None,
        after: int | None = None,
        level: str | None = None,
        limit: int = 500,
        request_id: str | None = None,
        trace_id: str | None = None,
    ) -> list[LogRow]:
        await self._store.commit(())
        return await self._store.list_logs(
            function=function,
            invocation_id=invocation_id,
            since=since,
            after=after,
            level=level,
            limit=limit,
            request_id=request_id,
            trace_id=trace_id,
        )

    async def list_dead_letters(
        self, function: str | None = None, limit: int = 100
    ) -> list[DeadLetter]:
        return await self._store.list_dead_letters(function=function, ids=None, limit=limit)

    async def redrive(
        self, function: str | None = None, ids: Sequence[str] | None = None
    ) -> list[str]:
        """Queue dead letters again as fresh attempts of the same invocations."""
        letters = await self._store.list_dead_letters(function=function, ids=ids, limit=100_000)
        redriven: list[str] = []
        now = time.time()
        for letter in letters:
            if is_target_letter(letter):
                ops, queue = redrive_ops(letter, now)
                await self._store.commit(ops)
                self._targets.wake(queue)
                redriven.append(letter.invocation_id)
                continue
            if letter.function not in self._functions:
                continue
            record = InvocationRecord(
                id=letter.invocation_id,
                function=letter.function,
                version=self.manifest.version,
                trigger=Trigger.REDRIVE,
                status=InvocationStatus.QUEUED,
                created_at=now,
            )
            delivery = Delivery(
                id=new_id(),
                queue=queue_name(letter.function),
                payload=letter.payload,
                invocation_id=letter.invocation_id,
                enqueued_at=now,
                available_at=now,
                headers={"trigger": Trigger.REDRIVE},
            )
            await self._store.commit(
                [TakeDeadLetter(letter.id), PutInvocation(record), Enqueue(delivery)]
            )
            redriven.append(letter.invocation_id)
        self._dispatcher.wake()
        return redriven

    async def purge_dead_letters(
        self, function: str | None = None, ids: Sequence[str] | None = None
    ) -> int:
        letters = await self._store.list_dead_letters(function=function, ids=ids, limit=100_000)
        if letters:
            await self._store.commit([TakeDeadLetter(letter.id) for letter in letters])
        return len(letters)

    async def queue_depth(self) -> int:
        return await self._store.depth()

    async def quiesce(self, timeout: float) -> None:
        """Stop leasing async deliveries and wait (up to ``timeout``) for those leased to
        finish: a deploy lets running invocations end instead of running them again."""
        self._leasing.cancel()
        await asyncio.gather(self._leasing, return_exceptions=True)
        deadline = time.monotonic() + timeout
        while self._dispatcher.busy and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    async def wait_idle(self, timeout: float = 60.0) -> None:
        """Return once no async work is queued or running (for tests and benchmarks)."""
        deadline = time.monotonic() + timeout
        while (
            self._dispatcher.busy
            or self._targets.busy
            or self._stream_consumers.busy
            or self._changes.busy
            or self._queue_consumers.busy
            or self.workflows.busy
            or self.projections.busy
            or await self._store.depth()
        ):
            if time.monotonic() > deadline:
                raise TimeoutError(f"async work still pending after {timeout} s")
            await asyncio.sleep(0.02)


async def _idle() -> None:
    """Stands in for the lease loop on a node that is not an invoker."""
    await asyncio.Event().wait()

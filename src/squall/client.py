"""A small synchronous client of the admin API; the CLI is built on it.

Error JSON from the server comes back as the matching :class:`~squall.errors.SquallError`
subclass (``NotFound``, ``FunctionError``, …); a server that cannot be reached raises
:class:`PlatformUnreachable` with a hint on how to start one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from squall.errors import NotFound, SquallError

DEFAULT_URL = "http://127.0.0.1:8787"
API = "/api/v1"


class PlatformUnreachable(SquallError):
    status = 503


@dataclass(frozen=True)
class InvokeResult:
    """A finished sync invocation: the function's own status, content type and body."""

    invocation_id: str
    status_code: int
    content_type: str
    body: bytes
    cold: bool
    duration_ms: float | None

    @property
    def is_json(self) -> bool:
        return self.content_type.split(";")[0].strip().endswith("json")

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Accepted:
    """An invocation queued (async) or still running (idempotent replay of one in flight)."""

    invocation_id: str
    status: str
    status_url: str


class SquallClient:
    def __init__(
        self, url: str = DEFAULT_URL, *, key: str | None = None, timeout: float = 30.0
    ) -> None:
        """``key`` is an API key, sent as ``Authorization: Bearer <key>``."""
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {key}"} if key else None
        self._http = httpx.Client(base_url=self.url + API, timeout=timeout, headers=headers)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SquallClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # functions

    def functions(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self._json("GET", "/functions")["functions"]
        return data

    def function(self, name: str) -> dict[str, Any]:
        return self._json("GET", _path("functions", name))

    def update_function(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        return self._json("PATCH", _path("functions", name), json=changes)

    def invoke(
        self, name: str, payload: bytes = b"", *, idempotency_key: str | None = None
    ) -> InvokeResult | Accepted:
        """Invoke and wait; a failed invocation raises its error (``FunctionError``, …)."""
        # Functions may run for up to 15 minutes: only connecting is bounded.
        timeout = httpx.Timeout(None, connect=self._http.timeout.connect)
        response = self._send(
            "POST",
            _path("functions", name, "invoke"),
            content=payload,
            headers=_key_header(idempotency_key),
            timeout=timeout,
        )
        if response.status_code == 202:
            return _accepted(response)
        if "x-squall-function-error" in response.headers or not _from_function(response):
            raise _error(response)
        return InvokeResult(
            invocation_id=response.headers["x-squall-invocation-id"],
            status_code=response.status_code,
            content_type=response.headers.get("content-type", "application/json"),
            body=response.content,
            cold=response.headers.get("x-squall-cold") == "true",
            duration_ms=_float(response.headers.get("x-squall-duration-ms")),
        )

    def invoke_async(
        self, name: str, payload: bytes = b"", *, idempotency_key: str | None = None
    ) -> Accepted:
        headers = {"X-Squall-Invocation-Type": "Event", **_key_header(idempotency_key)}
        response = self._send(
            "POST", _path("functions", name, "invoke"), content=payload, headers=headers
        )
        if response.is_error:
            raise _error(response)
        return _accepted(response)

    # invocations and logs

    def invocations(
        self,
        function: str | None = None,
        *,
        status: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> dict[str, Any]:
        params = _params(function=function, status=status, limit=limit, before=before)
        return self._json("GET", "/invocations", params=params)

    def invocation(self, invocation_id: str) -> dict[str, Any]:
        return self._json("GET", _path("invocations", invocation_id))

    def logs(
        self,
        function: str | None = None,
        *,
        invocation_id: str | None = None,
        since: float | None = None,
        after: int | None = None,
        level: str | None = None,
        grep: str | None = None,
        limit: int = 500,
        trace: str | None = None,
    ) -> dict[str, Any]:
        params = _params(
            function=function,
            invocation_id=invocation_id,
            since=since,
            after=after,
            level=level,
            grep=grep,
            limit=limit,
            trace=trace,
        )
        return self._json("GET", "/logs", params=params)

    # traces

    def traces(
        self, function: str | None = None, *, limit: int = 50, before: str | None = None
    ) -> dict[str, Any]:
        """A page of traces, newest first: ``{"traces": [...], "next": cursor or None}``."""
        params = _params(function=function, limit=limit, before=before)
        return self._json("GET", "/traces", params=params)

    def trace(self, trace_id: str) -> dict[str, Any]:
        """One trace: ``{"trace_id", "spans": [...]}`` sorted by start."""
        return self._json("GET", _path("traces", trace_id))

    # dead letters

    def dead_letters(self, function: str | None = None, *, limit: int = 100) -> list[Any]:
        data = self._json("GET", "/dead-letters", params=_params(function=function, limit=limit))
        letters: list[Any] = data["dead_letters"]
        return letters

    def redrive(self, function: str | None = None, ids: list[str] | None = None) -> list[str]:
        body = _params(function=function, ids=ids)
        redriven: list[str] = self._json("POST", "/dead-letters/redrive", json=body)["redriven"]
        return redriven

    def purge(self, function: str | None = None, ids: list[str] | None = None) -> int:
        body = _params(function=function, ids=ids)
        return int(self._json("POST", "/dead-letters/purge", json=body)["purged"])

    # keys and secrets (admin scope)

    def create_key(self, name: str, scopes: list[str]) -> dict[str, Any]:
        """A new key; its text is in ``["key"]`` and is never shown again."""
        return self._json("POST", "/keys", json={"name": name, "scopes": scopes})

    def keys(self) -> list[dict[str, Any]]:
        keys: list[dict[str, Any]] = self._json("GET", "/keys")["keys"]
        return keys

    def revoke_key(self, key_id: str) -> dict[str, Any]:
        return self._json("DELETE", _path("keys", key_id))

    def set_secret(self, name: str, value: str) -> dict[str, Any]:
        return self._json("PUT", _path("secrets", name), json={"value": value})

    def secrets(self) -> list[dict[str, Any]]:
        secrets: list[dict[str, Any]] = self._json("GET", "/secrets")["secrets"]
        return secrets

    def delete_secret(self, name: str) -> None:
        self._json("DELETE", _path("secrets", name))

    def publish(self, event: dict[str, Any], *, bus: str = "default") -> dict[str, Any]:
        """Publish one event in the CloudEvents JSON format (structured mode)."""
        return self._json(
            "POST",
            "/events",
            params={"bus": bus},
            content=json.dumps(event),
            headers={"Content-Type": "application/cloudevents+json"},
        )

    def test_pattern(self, pattern: Any, event: Any) -> bool:
        body = {"pattern": pattern, "event": event}
        answer = self._json("POST", "/events/test-pattern", json=body)
        return bool(answer["match"])

    # schedules

    def schedules(self, count: int = 3) -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = self._json(
            "GET", "/schedules", params={"count": count}
        )["schedules"]
        return listed

    def schedule(self, name: str) -> dict[str, Any]:
        return self._json("GET", _path("schedules", name))

    def put_schedule(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._json("PUT", _path("schedules", name), json=body)

    def update_schedule(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        return self._json("PATCH", _path("schedules", name), json=changes)

    def delete_schedule(self, name: str) -> dict[str, Any]:
        return self._json("DELETE", _path("schedules", name))

    def schedule_times(
        self, expression: str, tz: str = "UTC", start: str | None = None, count: int = 5
    ) -> list[str]:
        params = _params(expression=expression, tz=tz, count=count, **{"from": start})
        times: list[str] = self._json("GET", "/schedules/next", params=params)["times"]
        return times

    # rules and buses

    def rules(self) -> list[dict[str, Any]]:
        rules: list[dict[str, Any]] = self._json("GET", "/rules")["rules"]
        return rules

    def rule(self, name: str) -> dict[str, Any]:
        return self._json("GET", _path("rules", name))

    def create_rule(self, rule: dict[str, Any]) -> dict[str, Any]:
        return self._json("POST", "/rules", json=rule)

    def put_rule(self, name: str, rule: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create or replace the rule ``name``; the rule, and whether it is new."""
        response = self._send("PUT", _path("rules", name), json=rule)
        if response.is_error:
            raise _error(response)
        saved: dict[str, Any] = response.json()
        return saved, response.status_code == 201

    def update_rule(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        return self._json("PATCH", _path("rules", name), json=changes)

    def delete_rule(self, name: str) -> None:
        self._json("DELETE", _path("rules", name))

    def buses(self) -> list[dict[str, Any]]:
        buses: list[dict[str, Any]] = self._json("GET", "/buses")["buses"]
        return buses

    # schemas, archives and replays

    def put_schema(
        self, event_type: str, version: int, schema: Any, *, force: bool = False
    ) -> dict[str, Any]:
        params = {"force": "true"} if force else None
        path = _path("schemas", event_type, str(version))
        return self._json("PUT", path, params=params, json=schema)

    def schemas(self) -> list[dict[str, Any]]:
        types: list[dict[str, Any]] = self._json("GET", "/schemas")["schemas"]
        return types

    def schema_versions(self, event_type: str) -> dict[str, Any]:
        return self._json("GET", _path("schemas", event_type))

    def schema(self, event_type: str, version: int) -> dict[str, Any]:
        return self._json("GET", _path("schemas", event_type, str(version)))

    def delete_schema(self, event_type: str, version: int | None = None) -> dict[str, Any]:
        parts = (event_type,) if version is None else (event_type, str(version))
        return self._json("DELETE", _path("schemas", *parts))

    def create_archive(
        self, name: str, bus: str, *, retention_s: int, pattern: Any = None
    ) -> dict[str, Any]:
        body = _params(name=name, bus=bus, retention_s=retention_s, pattern=pattern)
        return self._json("POST", "/archives", json=body)

    def archives(self) -> list[dict[str, Any]]:
        archives: list[dict[str, Any]] = self._json("GET", "/archives")["archives"]
        return archives

    def archive(self, name: str) -> dict[str, Any]:
        return self._json("GET", _path("archives", name))

    def delete_archive(self, name: str) -> None:
        self._json("DELETE", _path("archives", name))

    def start_replay(self, **body: Any) -> dict[str, Any]:
        """``bus``, ``archive``, ``from`` (epoch s), ``to``, ``pattern``; None means unset."""
        return self._json("POST", "/replays", json=_params(**body))

    def replay(self, replay_id: str) -> dict[str, Any]:
        return self._json("GET", _path("replays", replay_id))

    def replays(self) -> list[dict[str, Any]]:
        replays: list[dict[str, Any]] = self._json("GET", "/replays")["replays"]
        return replays

    def streams(self) -> list[dict[str, Any]]:
        streams: list[dict[str, Any]] = self._json("GET", "/streams")["streams"]
        return streams

    def stream(self, name: str) -> dict[str, Any]:
        return self._json("GET", _path("streams", name))

    def create_stream(self, name: str, *, shards: int, retention_s: int) -> dict[str, Any]:
        body = {"name": name, "shards": shards, "retention_s": retention_s}
        return self._json("POST", "/streams", json=body)

    def delete_stream(self, name: str) -> None:
        self._json("DELETE", _path("streams", name))

    def put_records(self, name: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Append ``[{"data", "partition_key"}, ...]``; returns each one's shard and sequence."""
        body = {"records": records}
        put: list[dict[str, Any]] = self._json(
            "POST", _path("streams", name, "records"), json=body
        )["records"]
        return put

    def read_records(
        self, name: str, shard: int, *, after: int = 0, limit: int = 100
    ) -> dict[str, Any]:
        """A page of the shard's records after ``after``; ``next_after`` continues it."""
        path = _path("streams", name, "shards", str(shard), "records")
        return self._json("GET", path, params={"after": after, "limit": limit})

    # queues

    def queues(self) -> list[dict[str, Any]]:
        queues: list[dict[str, Any]] = self._json("GET", "/queues")["queues"]
        return queues

    def queue(self, name: str) -> dict[str, Any]:
        return self._json("GET", _path("queues", name))

    def create_queue(self, name: str, **config: Any) -> dict[str, Any]:
        return self._json("POST", "/queues", json={"name": name, **_params(**config)})

    def delete_queue(self, name: str) -> None:
        self._json("DELETE", _path("queues", name))

    def send_message(self, queue: str, body: Any, **options: Any) -> dict[str, Any]:
        """Send a JSON-able ``body``; ``options``: attributes, delay_s, group_id, dedup_id."""
        payload = {"body": body, **_params(**options)}
        return self._json("POST", _path("queues", queue, "messages"), json=payload)

    def send_message_batch(self, queue: str, entries: list[dict[str, Any]]) -> list[Any]:
        """Send 1-10 messages (each ``{"body", ...}``) in one commit; their ids, in order."""
        path = _path("queues", queue, "messages", "batch")
        sent: list[Any] = self._json("POST", path, json={"messages": entries})["messages"]
        return sent

    def receive_messages(
        self,
        queue: str,
        *,
        max_messages: int = 1,
        wait_s: float = 0,
        visibility_s: int | None = None,
    ) -> list[dict[str, Any]]:
        body = _params(max_messages=max_messages, wait_s=wait_s, visibility_s=visibility_s)
        # Long polling: the server may hold the request for wait_s.
        timeout = max(self._http.timeout.read or 30.0, wait_s + 10)
        data = self._json("POST", _path("queues", queue, "receive"), json=body, timeout=timeout)
        messages: list[dict[str, Any]] = data["messages"]
        return messages

    def delete_message(self, queue: str, receipt: str) -> None:
        self._json("DELETE", _path("queues", queue, "messages", receipt))

    def change_visibility(self, queue: str, receipt: str, visibility_s: int) -> None:
        path = _path("queues", queue, "messages", receipt, "visibility")
        self._json("POST", path, json={"visibility_s": visibility_s})

    def purge_queue(self, name: str) -> None:
        self._json("POST", _path("queues", name, "purge"))

    def redrive_queue(self, name: str) -> dict[str, Any]:
        return self._json("POST", _path("queues", name, "redrive"))

    # transport

    # buckets

    def buckets(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._json("GET", "/buckets")["buckets"]
        return found

    def bucket(self, name: str) -> dict[str, Any]:
        return self._json("GET", _path("buckets", name))

    def create_bucket(self, name: str, *, max_object_bytes: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name}
        if max_object_bytes is not None:
            body["max_object_bytes"] = max_object_bytes
        return self._json("POST", "/buckets", json=body)

    def delete_bucket(self, name: str) -> None:
        self._json("DELETE", _path("buckets", name))

    def list_objects(self, bucket: str, **params: Any) -> dict[str, Any]:
        """``prefix``, ``delimiter``, ``cursor``, ``limit``: one page."""
        query = {k: v for k, v in params.items() if v is not None}
        return self._json("GET", _path("buckets", bucket, "objects"), params=query)

    def put_object(
        self,
        bucket: str,
        key: str,
        body: Iterable[bytes] | bytes,
        *,
        size: int | None = None,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Stream ``body`` (bytes, or an iterable of chunks of ``size`` bytes in all)."""
        headers = {f"x-squall-meta-{k}": v for k, v in (metadata or {}).items()}
        if content_type:
            headers["content-type"] = content_type
        if size is not None:
            headers["content-length"] = str(size)
        return self._json(
            "PUT",
            _path("buckets", bucket, "object"),
            params={"key": key},
            content=body,
            headers=headers,
            timeout=httpx.Timeout(None, connect=self._http.timeout.connect),
        )

    @contextmanager
    def get_object(
        self, bucket: str, key: str, *, range: str | None = None
    ) -> Iterator[httpx.Response]:
        """The object's response, its body not read yet (``iter_bytes`` streams it)."""
        headers = {"range": range} if range else {}
        try:
            with self._http.stream(
                "GET",
                _path("buckets", bucket, "object"),
                params={"key": key},
                headers=headers,
                timeout=httpx.Timeout(None, connect=self._http.timeout.connect),
            ) as response:
                if response.is_error:
                    response.read()
                    raise _error(response)
                yield response
        except httpx.TransportError as exc:
            raise PlatformUnreachable(f"cannot reach Squall at {self.url}: {exc}") from exc

    def head_object(self, bucket: str, key: str) -> dict[str, str]:
        response = self._send("HEAD", _path("buckets", bucket, "object"), params={"key": key})
        if response.status_code == 404:
            raise NotFound(f"object {key!r} does not exist in bucket {bucket!r}", field="key")
        if response.is_error:
            raise SquallError(f"HTTP {response.status_code} for HEAD of {key!r}")
        return dict(response.headers)

    def copy_object(
        self, bucket: str, key: str, to_key: str, *, to_bucket: str | None = None
    ) -> dict[str, Any]:
        body = {"key": key, "to_key": to_key, "to_bucket": to_bucket or bucket}
        return self._json("POST", _path("buckets", bucket, "copy"), json=body)

    def delete_object(self, bucket: str, key: str) -> dict[str, Any]:
        return self._json("DELETE", _path("buckets", bucket, "object"), params={"key": key})

    def presign(self, bucket: str, key: str, *, method: str, expires_s: int) -> dict[str, Any]:
        body = {"key": key, "method": method, "expires_s": expires_s}
        return self._json("POST", _path("buckets", bucket, "presign"), json=body)
    # tables

    def tables(self) -> list[dict[str, Any]]:
        tables: list[dict[str, Any]] = self._json("GET", "/tables")["tables"]
        return tables

    def table(self, name: str) -> dict[str, Any]:
        return self._json("GET", _path("tables", name))

    def create_table(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._json("POST", "/tables", json=body)

    def delete_table(self, name: str) -> None:
        self._json("DELETE", _path("tables", name))

    def get_item(self, table: str, partition: str, sort: str | None = None) -> dict[str, Any]:
        params = {} if sort is None else {"sort": sort}
        return self._json("GET", _path("tables", table, "items", partition), params=params)

    def put_item(self, table: str, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` is ``{"item", "if_not_exists"?, "if_version"?, "condition"?}``."""
        return self._json("PUT", _path("tables", table, "items"), json=body)

    def delete_item(
        self, table: str, partition: str, sort: str | None = None, if_version: int | None = None
    ) -> dict[str, Any]:
        params: dict[str, Any] = {} if sort is None else {"sort": sort}
        if if_version is not None:
            params["if_version"] = if_version
        return self._json("DELETE", _path("tables", table, "items", partition), params=params)

    def query_table(self, table: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._json("POST", _path("tables", table, "query"), json=body)

    def scan_table(self, table: str, *, limit: int, cursor: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        return self._json("GET", _path("tables", table, "items"), params=params)

    def metrics_summary(self, *, since: float, until: float | None = None) -> dict[str, Any]:
        return self._json("GET", "/metrics/summary", params=_params(since=since, until=until))

    def cost(self, *, by: str, since: float, until: float | None = None) -> dict[str, Any]:
        params = _params(by=by, since=since, until=until)
        return self._json("GET", "/cost", params=params)
    # --- workflows ---------------------------------------------------------------------

    def workflows(self) -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = self._json("GET", "/workflows")["workflows"]
        return listed

    def start_workflow(
        self, name: str, input: Any = None, run_id: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Start a run; the bool tells whether it was created (False: that id existed)."""
        body: dict[str, Any] = {"input": input}
        if run_id is not None:
            body["id"] = run_id
        response = self._send("POST", _path("workflows", name, "runs"), json=body)
        if response.is_error:
            raise _error(response)
        run: dict[str, Any] = response.json()
        return run, response.status_code == 201

    def workflow_runs(
        self,
        workflow: str | None = None,
        status: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        for name, value in (("workflow", workflow), ("status", status), ("cursor", cursor)):
            if value is not None:
                params[name] = value
        return self._json("GET", "/workflows/runs", params=params)

    def workflow_run(self, run_id: str) -> dict[str, Any]:
        return self._json("GET", _path("workflows", "runs", run_id))

    def workflow_history(self, run_id: str) -> list[dict[str, Any]]:
        steps: list[dict[str, Any]] = self._json(
            "GET", _path("workflows", "runs", run_id, "history")
        )["steps"]
        return steps

    def cancel_workflow(self, run_id: str) -> dict[str, Any]:
        return self._json("POST", _path("workflows", "runs", run_id, "cancel"))

    # --- event store -------------------------------------------------------------------

    def es_streams(self, *, prefix: str = "", after: str = "", limit: int = 100) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if prefix:
            params["prefix"] = prefix
        if after:
            params["after"] = after
        return self._json("GET", "/es/streams", params=params)

    def es_stream(self, stream: str) -> dict[str, Any]:
        return self._json("GET", _path("es", "streams", stream))

    def es_read(
        self, stream: str, *, start: int | None = None, limit: int = 100, backward: bool = False
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit,
                                  "direction": "backward" if backward else "forward"}
        if start is not None:
            params["start"] = start
        return self._json("GET", _path("es", "streams", stream, "events"), params=params)

    def es_append(
        self, stream: str, events: list[dict[str, Any]], expected_version: int | str = "any"
    ) -> dict[str, Any]:
        body = {"events": events, "expected_version": expected_version}
        return self._json("POST", _path("es", "streams", stream, "events"), json=body)

    def es_set_metadata(self, stream: str, metadata: dict[str, Any]) -> dict[str, Any]:
        return self._json("PUT", _path("es", "streams", stream, "metadata"), json=metadata)

    def es_delete(self, stream: str) -> dict[str, Any]:
        return self._json("DELETE", _path("es", "streams", stream))

    def es_read_all(
        self, *, after: int = 0, limit: int = 100, prefixes: list[str] | None = None
    ) -> dict[str, Any]:
        params: list[tuple[str, Any]] = [("after", after), ("limit", limit)]
        params += [("prefix", prefix) for prefix in prefixes or []]
        return self._json("GET", "/es/all", params=params)

    def projections(self) -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = self._json("GET", "/projections")["projections"]
        return listed

    def projection(self, name: str) -> dict[str, Any]:
        return self._json("GET", _path("projections", name))

    def rebuild_projection(self, name: str) -> dict[str, Any]:
        return self._json("POST", _path("projections", name, "rebuild"))

    # deploys

    def deploy(
        self,
        bundle: bytes,
        app: str,
        *,
        prune: bool = False,
        dry_run: bool = False,
        canary: dict[str, str] | None = None,
        deployer: str | None = None,
    ) -> dict[str, Any]:
        """Upload a bundle (gzipped tar of the app's directory); answers the plan and whether
        it was applied. ``canary`` holds the query options: canary, for, steps, rollback_on."""
        params: dict[str, str] = {"app": app, **(canary or {})}
        if prune:
            params["prune"] = "true"
        if dry_run:
            params["dry_run"] = "true"
        headers = {"content-type": "application/gzip"}
        if deployer:
            headers["x-squall-deployer"] = deployer
        return self._json(
            "POST", "/deployments", params=params, content=bundle, headers=headers,
            timeout=max(self._http.timeout.read or 0, 120.0),
        )

    def deployments(self, limit: int = 50) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self._json(
            "GET", "/deployments", params={"limit": limit}
        )["deployments"]
        return data

    def versions(self, function: str) -> dict[str, Any]:
        return self._json("GET", _path("functions", function, "versions"))

    def aliases(self, function: str) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self._json(
            "GET", _path("functions", function, "aliases")
        )["aliases"]
        return data

    def set_alias(
        self, function: str, alias: str, version: int, canary: int | None = None, weight: int = 0
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"version": version, "weight": weight}
        if canary is not None:
            body["canary"] = canary
        return self._json("PUT", _path("functions", function, "aliases", alias), json=body)

    def delete_alias(self, function: str, alias: str) -> None:
        response = self._send("DELETE", _path("functions", function, "aliases", alias))
        if response.is_error:
            raise _error(response)

    def rollback(self, function: str, alias: str = "live") -> dict[str, Any]:
        return self._json("POST", _path("functions", function, "rollback"), json={"alias": alias})

    def canaries(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self._json("GET", "/canaries")["canaries"]
        return data

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._send(method, path, **kwargs)
        if response.is_error:
            raise _error(response)
        data = response.json()
        if not isinstance(data, dict):
            raise SquallError(f"unexpected reply from {response.url}: {response.text[:200]}")
        return data

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise PlatformUnreachable(
                f"cannot reach Squall at {self.url} ({exc or type(exc).__name__}): start it with"
                " `squall up app.py`, or point --url / SQUALL_URL at a running platform",
                url=self.url,
            ) from exc


def _path(*parts: str) -> str:
    return "".join("/" + quote(part, safe="") for part in parts)


def _from_function(response: httpx.Response) -> bool:
    # Only the function's own responses carry an invocation id; platform errors do not.
    return "x-squall-invocation-id" in response.headers


def _error(response: httpx.Response) -> SquallError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return SquallError.from_dict(body["error"])
    text = response.text.strip()[:200] or response.reason_phrase
    return SquallError(f"HTTP {response.status_code} from {response.url}: {text}")


def _accepted(response: httpx.Response) -> Accepted:
    data = response.json()
    return Accepted(str(data["invocation_id"]), str(data["status"]), str(data["status_url"]))


def _key_header(key: str | None) -> dict[str, str]:
    return {"Idempotency-Key": key} if key else {}


def _params(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _float(value: str | None) -> float | None:
    return float(value) if value else None

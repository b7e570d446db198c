"""The NATS JetStream log: one stream, file storage, ``replicas`` copies; the log for T3/T4 clusters.

What it guarantees:

- One partition, named after the stream; offsets are stream sequence numbers (strictly increasing from 1).
- An append is acknowledged only once the stream stored it (on a quorum of replicas when ``replicas > 1``).
- A batch of several events is **atomic** (nats-server >= 2.12 atomic batch publish, ``allow_atomic``): all
  events are stored, contiguously, or none. A batch may hold at most :attr:`JetStreamLog.MAX_BATCH` events
  (the server's limit); a larger one is refused with :class:`LogError` before anything is sent: split it
  yourself if all-or-nothing per chunk is acceptable.
- ``expected`` is checked by the server (``Nats-Expected-Last-Sequence`` on the batch's first message): a
  stale expectation raises :class:`AppendConflictError` and writes nothing.
- Dedup: every message carries ``Nats-Msg-Id = event_id``; an event re-sent within the stream's
  ``duplicate_window`` (default one hour) is not stored again and its first position is returned. After the
  window the server forgets the id (``DEDUP_FOREVER = False``): downstream consumers dedupe by event id.
- Reads use batched direct gets (``allow_direct``) and see this instance's own appends (read-your-writes);
  ``subscribe`` follows the stream with an ordered push consumer and resumes exactly after ``after``.
- Consumer positions live in a file-backed KV bucket beside the stream, so they survive server restarts.

Every nats error is translated in :meth:`JetStreamLog._mapped_errors`, the one boundary: timeouts, lost
connections, no responders or no leader become :class:`LogUnavailableError` (retriable), a wrong last
sequence becomes :class:`AppendConflictError`, anything else :class:`LogError`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import re
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext, api
from nats.js.kv import KeyValue

from infra.log.base import Clock, EventLog, LogPosition, LogRecord, first_copies, unreadable_record
from infra.log.errors import (
    AppendConflictError,
    LogClosedError,
    LogError,
    LogUnavailableError,
)
from infra.log.jetstream_tail import StoredTail
from infra.log.url import redact_url
from infra.tasks import finish_within, stop_task
from schemas import SchemaError, SignedEvent

__all__ = ["JetStreamLog", "StreamShape", "confirm_subject", "default_prefix", "parse_nats_url", "positions_bucket",
           "subject_for"]

logger = logging.getLogger(__name__)

DEFAULT_STREAM = "ai-memory"
_TOKEN_BAD = re.compile(r"[\s*>]")
_EVENT_ID_OK = re.compile(r"^[\x21-\x7e]{1,256}$")
_BUCKET_BAD = re.compile(r"[^A-Za-z0-9_-]")
_ACTUAL_SEQ = re.compile(r"wrong last sequence: (\d+)")
_IMPOSSIBLE_SEQ = str(2**63)
#: How long closing a connection may take: one whose TLS handshake was refused can wait forever for the socket.
_CLOSE_WITHIN = 5.0


class Header:
    """Message headers this backend writes or reads."""

    MSG_ID = "Nats-Msg-Id"
    SIGNATURE = "Ai-Memory-Signature"
    EXPECTED_LAST_SEQUENCE = "Nats-Expected-Last-Sequence"
    BATCH_ID = "Nats-Batch-Id"
    BATCH_SEQUENCE = "Nats-Batch-Sequence"
    BATCH_COMMIT = "Nats-Batch-Commit"
    SEQUENCE = "Nats-Sequence"
    STATUS = "Status"


class Code:
    """JetStream API error codes (``err_code``) that this backend acts on."""

    NO_SUITABLE_PEERS = 10005
    CLUSTER_NOT_AVAILABLE = 10008
    NOT_LEADER = 10009
    STREAM_NAME_IN_USE = 10058
    STREAM_NOT_FOUND = 10059
    WRONG_LAST_SEQUENCE = 10071
    STREAM_OFFLINE = 10118
    DUPLICATE_IN_PROCESS = 10158
    BATCH_TOO_LARGE = 10199
    BATCH_HAS_DUPLICATE = 10201
    BATCH_TOO_MANY_INFLIGHT = 10210


#: Server answers that mean "try again later" rather than "you asked for something wrong".
# NO_SUITABLE_PEERS: fewer servers online than replicas, as while a restarted server rejoins; if the cluster
# really is too small, stream creation gives up after CREATE_TIMEOUT with the server's words.
# DUPLICATE_IN_PROCESS: an append sent again (same ids) after a timeout while the server still proposes the first
# copy, as after a frozen leader; asked again a moment later it answers the first copy's sequence.
_RETRIABLE_CODES = frozenset({Code.NO_SUITABLE_PEERS, Code.CLUSTER_NOT_AVAILABLE, Code.NOT_LEADER,
                              Code.STREAM_OFFLINE, Code.BATCH_TOO_MANY_INFLIGHT, Code.DUPLICATE_IN_PROCESS})
_RETRIABLE_STATUS = frozenset({408, 429, 503})
_UNAVAILABLE = (nats.errors.TimeoutError, TimeoutError, nats.errors.NoRespondersError,
                nats.js.errors.NoStreamResponseError, nats.errors.ConnectionClosedError,
                nats.errors.ConnectionReconnectingError, nats.errors.StaleConnectionError,
                nats.errors.NoServersError, nats.errors.OutboundBufferLimitError, nats.errors.ConnectionDrainingError,
                OSError)


class _BatchHasDuplicate(Exception):
    """An atomic batch held an event id the stream already has; nothing was written."""


@dataclass(frozen=True)
class StreamShape:
    """Where a stream lives and what it is, beyond one cluster's single stream (the regional hive's needs).

    ``cluster``: place the stream (and its positions bucket) in this cluster of a supercluster.
    ``mirror_of``: the stream is a read-only mirror of that origin stream; its records and clocks carry the
    origin's name, and its offsets are the origin's (a mirror keeps the origin's sequence numbers).
    """

    cluster: str | None = None
    mirror_of: str | None = None


@dataclass(frozen=True)
class _Target:
    servers: list[str]
    stream: str


def parse_nats_url(url: str, *, stream: str = DEFAULT_STREAM) -> _Target:
    """``nats://h1:p1,h2:p2[/stream]`` → the server URLs and the stream (the path overrides ``stream``)."""
    parts = [p.strip() for p in url.split(",") if p.strip()]
    if not parts:
        raise LogError("empty NATS URL")
    scheme = urlsplit(parts[0]).scheme or "nats"
    servers: list[str] = []
    for part in parts:
        full = part if "://" in part else f"{scheme}://{part}"
        split = urlsplit(full)
        if split.path.strip("/"):
            stream = split.path.strip("/")
        servers.append(split._replace(path="", query="", fragment="").geturl())
    if not re.fullmatch(r"[^\s.*>/\\]+", stream):
        msg = f"invalid stream name {stream!r}"
        raise LogError(msg)
    return _Target(servers, stream)


def default_prefix(stream: str) -> str:
    """The subject prefix of a stream's events when none is given: ``aimem.<stream>``."""
    return f"aimem.{stream}"


def confirm_subject(prefix: str) -> str:
    """Where nodes on a stream confirm what they applied: outside ``<prefix>.>``, so the stream never stores one."""
    return f"{prefix}-confirm"


def subject_for(prefix: str, event_type: str) -> str:
    """The subject of an event: ``<prefix>.<event type>``, each token made legal for NATS."""
    tokens = [_TOKEN_BAD.sub("_", token) or "_" for token in event_type.split(".")]
    return ".".join([prefix, *tokens])


def positions_bucket(stream: str) -> str:
    """The KV bucket that holds consumer positions for ``stream``."""
    return f"{_BUCKET_BAD.sub('_', stream)}_positions"


def _position_key(consumer: str) -> str:
    # KV keys allow only [-/_=.a-zA-Z0-9]; base64url keeps any consumer name distinct and legal.
    return "c_" + base64.urlsafe_b64encode(consumer.encode()).decode().rstrip("=")


def _message_headers(event: SignedEvent) -> dict[str, str]:
    if not _EVENT_ID_OK.match(event.event_id):
        msg = f"event id {event.event_id!r} cannot be a NATS message id (printable ASCII, no spaces)"
        raise LogError(msg)
    return {Header.MSG_ID: event.event_id, Header.SIGNATURE: base64.b64encode(event.signature).decode()}


def _record(stream: str, offset: int, body: bytes, headers: dict[str, str] | None) -> LogRecord:
    try:
        signature = base64.b64decode((headers or {})[Header.SIGNATURE], validate=True)
        event = SignedEvent.from_parts(body, signature)
    except KeyError:
        return unreadable_record(stream, offset, body, b"", "no signature header")
    except (binascii.Error, SchemaError) as exc:
        return unreadable_record(stream, offset, body, b"", str(exc))
    return LogRecord(stream, offset, event)


def _raise_for_reply(data: bytes) -> dict[str, Any]:
    """The JSON of a JetStream reply; its ``error`` raised as the nats ``APIError`` it stands for."""
    resp: dict[str, Any] = json.loads(data)
    if "error" in resp:
        nats.js.errors.APIError.from_error(resp["error"])
    return resp


def _translate(exc: Exception, stream: str, expected: int | None, closed: bool) -> LogError:
    """The log error for a nats (or socket) error: the most specific class that fits."""
    if closed:
        return LogClosedError(f"JetStream log {stream!r} is closed")
    if isinstance(exc, nats.js.errors.APIError):
        if exc.err_code == Code.WRONG_LAST_SEQUENCE and expected is not None:
            match = _ACTUAL_SEQ.search(exc.description or "")
            return AppendConflictError(stream, expected, int(match.group(1)) if match else -1)
        if exc.err_code in _RETRIABLE_CODES or exc.code in _RETRIABLE_STATUS:
            return LogUnavailableError(f"JetStream {stream!r} unavailable: {exc}")
        return LogError(f"JetStream {stream!r}: {exc}")
    if isinstance(exc, _UNAVAILABLE):
        return LogUnavailableError(f"JetStream {stream!r} unreachable: {type(exc).__name__} {exc}")
    return LogError(f"JetStream {stream!r}: {type(exc).__name__} {exc}")


def _resume_after(sub: JetStreamContext.PushSubscription, seq: int) -> None:
    """Tell the client's ordered-consumer state that the consumer starts after ``seq``: a consumer re-created
    before its first message (a lost server) then resumes there, not at the stream's first record. nats-py keeps
    that state privately (``_jsi._sseq``) and sets it only from delivered messages."""
    jsi = getattr(sub._sub, "_jsi", None)
    if jsi is not None and getattr(jsi, "_sseq", None) == 0:
        jsi._sseq = seq


class _ConnectionEvents:
    """Connection callbacks that log (URLs without passwords), once per outage rather than per retry."""

    def __init__(self, safe_url: str, nc: NatsClient) -> None:
        self._url = safe_url
        self._nc = nc
        self._quiet = False

    async def on_error(self, exc: Exception) -> None:
        level = logging.DEBUG if self._quiet else logging.WARNING
        logger.log(level, "nats %s: %s: %s", self._url, type(exc).__name__, exc)
        self._quiet = True

    async def on_disconnect(self) -> None:
        if self._nc.is_closed:
            return  # our own close() (every CLI verb ends so): nothing to reconnect, nothing to report
        logger.warning("nats %s: disconnected; reconnecting", self._url)

    async def on_reconnect(self) -> None:
        self._quiet = False
        logger.info("nats %s: reconnected", self._url)


class JetStreamLog(EventLog):
    ATOMIC_BATCHES = True
    SUPPORTS_EXPECTED = True
    DEDUP_FOREVER = False
    #: The most events one atomic batch may hold (nats-server's own limit).
    MAX_BATCH: ClassVar[int] = 1000
    #: How long ``connect`` keeps retrying while the cluster has no meta leader.
    CREATE_TIMEOUT: ClassVar[float] = 30.0
    #: Consumer heartbeat: a subscriber notices a lost consumer (server restart) after two missed beats.
    HEARTBEAT: ClassVar[float] = 0.5
    #: Client pings (seconds) and how many may go unanswered before the connection counts as dead and the
    #: client moves to another server of the cluster.
    PING_INTERVAL: ClassVar[int] = 1
    #: How long one append (or one direct read) waits for the stream before it counts as unavailable and is
    #: retried.
    APPEND_TIMEOUT: ClassVar[float] = 2.0
    MAX_OUTSTANDING_PINGS: ClassVar[int] = 2

    def __init__(self, nc: NatsClient, *, url: str, stream: str, replicas: int, subject_prefix: str,
                 timeout: float, shape: StreamShape | None = None, owns_connection: bool = True) -> None:
        self._nc = nc
        self._shape = shape or StreamShape()
        self._owns_connection = owns_connection
        # The name records and clocks carry: the stream's own, or for a mirror its origin's (same offsets).
        self._partition = self._shape.mirror_of or stream
        self._js: JetStreamContext = nc.jetstream(timeout=timeout)
        self._url = url
        self._stream = stream
        self._replicas = replicas
        self._prefix = subject_prefix
        self._timeout = timeout
        # An append sent while the stream has no leader (one died, one froze) is never answered: give up on it
        # soon and send it again (same ids, so the stream stores it once), so writes resume soon after a new
        # leader is elected instead of a whole ``timeout`` later.
        self._append_timeout = min(timeout, self.APPEND_TIMEOUT)
        self._closed = False
        self._seen = 0  # highest sequence this instance has appended or read (for read-your-writes)
        self._kv: KeyValue | None = None
        # The newest stored records, pushed (infra.log.jetstream_tail): reads and wake-ups without polling.
        self._tail = StoredTail(lambda seq, msg: _record(self._partition, seq, msg.data, msg.headers))
        self._following: Subscription | None = None
        # Several projectors wait at once: without it each would start a consumer of its own, and the node
        # would receive (and the servers deliver) every record once per waiter.
        self._follow_lock = asyncio.Lock()

    # ---- connecting -------------------------------------------------------------------------------------

    @classmethod
    async def connect(cls, url: str, *, stream: str = DEFAULT_STREAM, replicas: int = 1,
                      subject_prefix: str | None = None, duplicate_window: float = 3600.0,
                      timeout: float = 5.0, tls: ssl.SSLContext | None = None, shape: StreamShape | None = None,
                      connection: NatsClient | None = None) -> JetStreamLog:
        """Connect to ``url`` (``nats://h1:p1,h2:p2[/stream]``) and create the stream if it is absent.

        ``tls`` is the client's SSL context (mutual TLS: it presents a certificate and trusts the servers' CA);
        required when the servers ask for client certificates. ``shape`` places the stream in one cluster of a
        supercluster, or makes it a read-only mirror (see :class:`StreamShape`). ``connection`` shares an open
        connection (left open by :meth:`close`) instead of opening one.

        Raises:
            LogUnavailableError: no server answered, or the stream could not be created within
                :attr:`CREATE_TIMEOUT` (no JetStream leader yet).
            LogError: the stream exists with subjects that do not cover ``subject_prefix``.
        """
        target = parse_nats_url(url, stream=stream)
        safe = ",".join(redact_url(s) for s in target.servers)
        prefix = subject_prefix or default_prefix((shape and shape.mirror_of) or target.stream)
        if _TOKEN_BAD.search(prefix) or "" in prefix.split("."):
            msg = f"invalid subject prefix {prefix!r}"
            raise LogError(msg)
        nc = connection or await cls._open_connection(target, safe, timeout, tls)
        log = cls(nc, url=f"{safe}/{target.stream}", stream=target.stream, replicas=replicas,
                  subject_prefix=prefix, timeout=timeout, shape=shape, owns_connection=connection is None)
        try:
            await log._ensure_stream(duplicate_window)
        except BaseException:
            await log.close()
            raise
        return log

    @staticmethod
    async def _open_connection(target: _Target, safe_url: str, timeout: float,
                               tls: ssl.SSLContext | None) -> NatsClient:
        """Connect within ``timeout``; once connected, the client reconnects forever on its own."""
        nc = NatsClient()
        events = _ConnectionEvents(safe_url, nc)
        # Not asyncio.wait_for: when the handshake keeps failing (a refused TLS certificate), nats-py retries
        # forever and may swallow the timeout's cancellation, so wait_for would never return. The attempt runs
        # as a task of its own, and stop_task cancels it for sure.
        connecting = asyncio.create_task(nc.connect(
            target.servers, tls=tls, name="ai-memory", max_reconnect_attempts=-1,
            reconnect_time_wait=0.2,  # type: ignore[arg-type]  # annotated int, used as float seconds
            # A frozen server (SIGSTOP, a hung host) keeps its TCP connection open: only unanswered pings tell.
            # nats-py's defaults (every 120 s, 2 outstanding) would pin a node to it for minutes; these leave
            # it within about PING_INTERVAL * (MAX_OUTSTANDING_PINGS + 1) seconds for another cluster member.
            ping_interval=JetStreamLog.PING_INTERVAL, max_outstanding_pings=JetStreamLog.MAX_OUTSTANDING_PINGS,
            connect_timeout=max(1, int(timeout)), error_cb=events.on_error,
            disconnected_cb=events.on_disconnect, reconnected_cb=events.on_reconnect), name="nats-connect")
        try:
            await asyncio.wait({connecting}, timeout=timeout)
        finally:
            if not connecting.done():
                await stop_task(connecting, give_up_after=5.0)
        failure: BaseException | None = (
            TimeoutError(f"no connection within {timeout:g}s") if not connecting.done() or connecting.cancelled()
            else connecting.exception())
        if failure is not None:
            await finish_within(nc.close(), _CLOSE_WITHIN, name="nats-close")
            exc = failure if isinstance(failure, Exception) else TimeoutError(str(failure))
            raise _translate(exc, target.stream, None, False) from failure
        return nc

    def _stream_config(self, duplicate_window: float) -> api.StreamConfig:
        placement = api.Placement(cluster=self._shape.cluster) if self._shape.cluster else None
        if self._shape.mirror_of:
            # A mirror has no subjects of its own and takes no appends; it pushes each message it stores to
            # its readers on the tail subject (see _follow).
            return api.StreamConfig(
                name=self._stream, mirror=api.StreamSource(name=self._shape.mirror_of), placement=placement,
                storage=api.StorageType.FILE, num_replicas=self._replicas, allow_direct=True, deny_delete=True,
                republish=api.RePublish(src=">", dest=f"{self._tail_subject}.>", headers_only=False))
        return api.StreamConfig(
            name=self._stream, subjects=[f"{self._prefix}.>"], storage=api.StorageType.FILE,
            num_replicas=self._replicas, duplicate_window=duplicate_window, allow_atomic=True,
            allow_direct=True, deny_delete=True, discard=api.DiscardPolicy.OLD, placement=placement)

    @property
    def _tail_subject(self) -> str:
        """Where a mirror republishes what it stores (outside every stream's subjects: no stream captures it)."""
        return f"aimem-stored.{self._stream}"

    async def _ensure_stream(self, duplicate_window: float) -> None:
        """Create the stream, or adopt an existing one; retried while JetStream has no leader."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.CREATE_TIMEOUT
        while True:
            try:
                with self._mapped_errors():
                    await self._create_or_adopt(self._stream_config(duplicate_window))
                return
            except LogUnavailableError:
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.25)

    async def _create_or_adopt(self, config: api.StreamConfig) -> None:
        try:
            info = await self._js.stream_info(self._stream)
        except nats.js.errors.NotFoundError:
            try:
                await self._js.add_stream(config)
                return
            except nats.js.errors.BadRequestError as exc:
                if exc.err_code != Code.STREAM_NAME_IN_USE:
                    raise
                info = await self._js.stream_info(self._stream)  # someone else created it meanwhile
        await self._adopt(info.config)

    async def _adopt(self, existing: api.StreamConfig) -> None:
        if self._shape.mirror_of:
            if existing.mirror is None or existing.mirror.name != self._shape.mirror_of:
                msg = f"stream {self._stream!r} exists but is not a mirror of {self._shape.mirror_of!r}"
                raise LogError(msg)
            return
        wanted = f"{self._prefix}.>"
        if wanted not in (existing.subjects or []):
            msg = f"stream {self._stream!r} has subjects {existing.subjects}, not {wanted!r}"
            raise LogError(msg)
        if not (existing.allow_atomic and existing.allow_direct):
            existing.allow_atomic = True
            existing.allow_direct = True
            await self._js.update_stream(existing)

    # ---- the one error boundary -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _mapped_errors(self, *, expected: int | None = None) -> Iterator[None]:
        """The one place nats errors become log errors (``expected`` names the offset a conflict refers to)."""
        self._check_open()
        try:
            yield
        except LogError:
            raise
        except (nats.errors.Error, TimeoutError, OSError) as exc:
            raise _translate(exc, self._stream, expected, self._closed) from exc

    def _check_open(self) -> None:
        if self._closed:
            msg = f"JetStream log {self._stream!r} is closed"
            raise LogClosedError(msg)

    # ---- EventLog ---------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self._url

    @property
    def stream(self) -> str:
        return self._stream

    @property
    def client(self) -> NatsClient:
        """The NATS connection (shared with the confirmation channel beside the stream)."""
        return self._nc

    @property
    def confirm_subject(self) -> str:
        """Where nodes confirm what they applied (:func:`confirm_subject`)."""
        return confirm_subject(self._prefix)

    async def append(self, events: Sequence[SignedEvent], *, expected: Clock | None = None,
                     new: bool = False) -> list[LogPosition]:
        self._check_open()
        if self._shape.mirror_of:
            msg = f"JetStream {self._stream!r} is a mirror of {self._shape.mirror_of!r}: append to the origin"
            raise LogError(msg)
        if not events:
            return []
        if len(events) > self.MAX_BATCH:
            msg = f"a batch of {len(events)} events exceeds the atomic batch limit of {self.MAX_BATCH}"
            raise LogError(msg)
        want = None if expected is None else expected.get(self._partition, 0)
        try:
            seqs = await self._append(events, want)
        except AppendConflictError as exc:
            if exc.actual >= 0:
                raise
            raise AppendConflictError(self._stream, exc.expected, await self._last_seq()) from exc
        self._seen = max(self._seen, *seqs)
        return [LogPosition(self._partition, seq) for seq in seqs]

    async def _append(self, events: Sequence[SignedEvent], want: int | None) -> list[int]:
        firsts, index = first_copies(events)
        if len(firsts) == 1:
            (seq,) = await self._publish_one(firsts[0], want)
            return [seq] * len(events)
        try:
            seqs = await self._publish_batch(firsts, want)
        except _BatchHasDuplicate:
            seqs = await self._append_around_duplicates(firsts, want)
        return [seqs[i] for i in index]

    async def _publish_one(self, event: SignedEvent, want: int | None) -> list[int]:
        headers = _message_headers(event)
        if want is not None:
            headers[Header.EXPECTED_LAST_SEQUENCE] = str(want)
        with self._mapped_errors(expected=want):
            ack = await self._js.publish(subject_for(self._prefix, event.envelope.type), event.body,
                                         headers=headers, timeout=self._append_timeout)
        return [ack.seq]

    async def _publish_batch(self, events: Sequence[SignedEvent], want: int | None) -> list[int]:
        """Publish ``events`` as one atomic batch; their sequences, contiguous, in order.

        Raises:
            _BatchHasDuplicate: an event id is already stored; nothing was written.
        """
        batch_id = uuid.uuid4().hex
        last = len(events)
        with self._mapped_errors(expected=want):
            for n, event in enumerate(events, start=1):
                headers = _message_headers(event)
                headers[Header.BATCH_ID] = batch_id
                headers[Header.BATCH_SEQUENCE] = str(n)
                if n == 1 and want is not None:
                    headers[Header.EXPECTED_LAST_SEQUENCE] = str(want)
                subject = subject_for(self._prefix, event.envelope.type)
                if n < last:
                    await self._nc.publish(subject, event.body, headers=headers)
                    continue
                headers[Header.BATCH_COMMIT] = "1"
                reply = await self._nc.request(subject, event.body, timeout=self._append_timeout, headers=headers)
            ack = self._batch_ack(reply.data)
        return list(range(ack.seq - last + 1, ack.seq + 1))

    @staticmethod
    def _batch_ack(data: bytes) -> api.PubAck:
        try:
            return api.PubAck.from_response(_raise_for_reply(data))
        except nats.js.errors.APIError as exc:
            if exc.err_code == Code.BATCH_HAS_DUPLICATE:
                raise _BatchHasDuplicate from exc
            raise

    async def _append_around_duplicates(self, events: Sequence[SignedEvent], want: int | None) -> list[int]:
        """Some events are stored already: find them, then store the rest as one atomic batch.

        A stale ``want`` is reported as a conflict first, as when no event is a duplicate.
        """
        for _ in range(3):
            if want is not None and (end := await self._last_seq()) != want:
                raise AppendConflictError(self._stream, want, end)
            stored = {i: seq for i, e in enumerate(events) if (seq := await self._stored_seq(e)) is not None}
            fresh = [e for i, e in enumerate(events) if i not in stored]
            try:
                new = await self._publish_batch(fresh, want) if fresh else []
            except _BatchHasDuplicate:
                continue  # another writer stored one of them meanwhile: look again
            new_seqs = iter(new)
            return [stored[i] if i in stored else next(new_seqs) for i in range(len(events))]
        msg = f"JetStream {self._stream!r}: concurrent writers keep storing the same events; retry"
        raise LogUnavailableError(msg)

    async def _stored_seq(self, event: SignedEvent) -> int | None:
        """The sequence of an already-stored event id, else None; writes nothing either way.

        A one-message batch that expects an impossible last sequence is refused as a duplicate when the id
        is stored, and as a wrong last sequence otherwise. Only for a duplicate do we then publish it alone,
        which the server answers with the original sequence.
        """
        headers = _message_headers(event)
        headers.update({Header.BATCH_ID: uuid.uuid4().hex, Header.BATCH_SEQUENCE: "1", Header.BATCH_COMMIT: "1",
                        Header.EXPECTED_LAST_SEQUENCE: _IMPOSSIBLE_SEQ})
        subject = subject_for(self._prefix, event.envelope.type)
        with self._mapped_errors():
            reply = await self._nc.request(subject, event.body, timeout=self._timeout, headers=headers)
            try:
                self._batch_ack(reply.data)
            except _BatchHasDuplicate:
                return (await self._publish_one(event, None))[0]
            except nats.js.errors.APIError as exc:
                if exc.err_code == Code.WRONG_LAST_SEQUENCE:
                    return None
                raise
        msg = f"JetStream {self._stream!r} accepted a probe that must fail; the stream may hold a stray message"
        raise LogError(msg)

    async def read(self, *, after: Clock | None = None, limit: int = 1000) -> list[LogRecord]:
        self._check_open()
        start = (after or {}).get(self._partition, 0) + 1
        if limit <= 0:
            return []
        if held := self._tail.take(start, limit):
            return held
        for _ in range(3):
            records = await self._direct_get(start, limit)
            top = records[-1].offset if records else start - 1
            # A replica behind this instance's own appends answered: ask again (another replica may answer).
            if len(records) == limit or top >= self._seen:
                break
            await asyncio.sleep(0.01)
        if records:
            self._seen = max(self._seen, records[-1].offset)
        return records

    async def _direct_get(self, start: int, limit: int) -> list[LogRecord]:
        """Up to ``limit`` records from ``start`` on, with one batched direct-get request."""
        inbox = self._nc.new_inbox()
        msgs: list[Msg] = []
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        async def collect(msg: Msg) -> None:
            status = (msg.headers or {}).get(Header.STATUS)
            if status is None:
                msgs.append(msg)
            elif not done.done():
                done.set_result(int(status))

        request = json.dumps({"seq": start, "batch": limit}).encode()
        with self._mapped_errors():
            sub = await self._nc.subscribe(inbox, cb=collect)
            try:
                await self._nc.publish(f"$JS.API.DIRECT.GET.{self._stream}", request, reply=inbox)
                # Any replica may answer (a queue group); a frozen one never does: ask again soon, another will.
                status = await asyncio.wait_for(done, timeout=self._append_timeout)
            finally:
                with contextlib.suppress(nats.errors.Error):
                    await sub.unsubscribe()
        if status not in (204, 404):
            raise _translate(nats.js.errors.APIError(code=status, description="direct get"), self._stream,
                             None, self._closed)
        return [self._to_record(msg) for msg in msgs]

    def _to_record(self, msg: Msg) -> LogRecord:
        headers = msg.headers or {}
        return _record(self._partition, int(headers.get(Header.SEQUENCE, "0")), msg.data, headers)

    async def subscribe(self, *, after: Clock | None = None, idle: float = 0.2) -> AsyncIterator[LogRecord]:
        """Every record after ``after``, then new ones as they are stored, pushed by an ordered consumer.

        ``idle`` is how often a quiet subscription checks that the log is still open.
        """
        position = (after or {}).get(self._partition, 0)
        sub = await self._ordered_consumer(position + 1, headers_only=False)
        try:
            while True:
                msg = await self._next(sub, idle)
                if msg is None:
                    continue
                offset = msg.metadata.sequence.stream
                if offset <= position:
                    continue  # the consumer was reset and replays: we have yielded this one already
                position = offset
                self._seen = max(self._seen, offset)
                yield _record(self._partition, offset, msg.data, msg.headers)
        finally:
            await self._drop_consumer(sub)

    async def _ordered_consumer(self, start: int, *, headers_only: bool,
                                cb: Callable[[Msg], Awaitable[None]] | None = None
                                ) -> JetStreamContext.PushSubscription:
        config = api.ConsumerConfig(deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start,
                                    headers_only=headers_only or None)
        with self._mapped_errors():
            return await self._js.subscribe(f"{self._prefix}.>", stream=self._stream, ordered_consumer=True,
                                            config=config, idle_heartbeat=self.HEARTBEAT, cb=cb)

    async def _next(self, sub: JetStreamContext.PushSubscription, timeout: float) -> Msg | None:
        with self._mapped_errors():
            try:
                return await sub.next_msg(timeout=timeout)
            except nats.errors.TimeoutError:
                return None

    async def _drop_consumer(self, sub: JetStreamContext.PushSubscription) -> None:
        """Unsubscribe and delete the ephemeral consumer now rather than when the server notices."""
        if self._nc.is_closed:
            return
        with contextlib.suppress(nats.errors.Error, TimeoutError):
            await sub.unsubscribe()
            await self._js.delete_consumer(self._stream, sub._consumer)

    async def wait_for_append(self, after: Clock, *, timeout: float) -> None:
        """Return once the stream may hold a record after ``after``, or after ``timeout``.

        One ordered push consumer per log instance (started by the first wait, from the stream's end on) is
        told of every record once it is stored: ours and other nodes', so a follower learns of a new event in
        one hop and reads it from :class:`~infra.log.jetstream_tail.StoredTail` without a round trip. It costs
        one more copy of each event to each node, which a cluster of a few nodes affords.
        """
        self._check_open()
        position = after.get(self._partition, 0)
        if max(self._seen, self._tail.last) > position:
            return
        if self._following is None:
            async with self._follow_lock:
                if self._following is None:
                    self._seen = max(self._seen, await self._follow())
            if self._seen > position:
                return  # appended before we listened
        await self._tail.wait_beyond(position, timeout)

    async def _follow(self) -> int:
        """Start pushing stored records into the tail; the stream's end when it started.

        A stream is followed by an ordered push consumer from its end on. A mirror republishes each record it
        stores on the tail subject, heard by a core subscription made first (so nothing stored after the end
        read is missed): a node of a region cut off from the others may be unable to create a consumer (that
        needs the hive's meta leader), while its mirrors keep storing what reached them.
        """
        with self._mapped_errors():
            if self._shape.mirror_of:
                self._following = await self._nc.subscribe(f"{self._tail_subject}.>",
                                                           cb=self._tail.handler(republished=True))
                return await self._last_seq()
            end = await self._last_seq()
            following = await self._ordered_consumer(end + 1, headers_only=False, cb=self._tail.handler())
        self._following = following
        _resume_after(following, end)
        return end

    async def cluster_info(self) -> dict[str, Any]:
        """The stream's leader and replicas as the server reports them (for status pages and tests)."""
        with self._mapped_errors():
            info = await self._js.stream_info(self._stream)
        cluster = info.cluster
        replicas = [{"name": r.name, "current": bool(r.current), "lag": r.lag or 0}
                    for r in (cluster.replicas or [])] if cluster else []
        return {"leader": cluster.leader if cluster else None, "replicas": replicas,
                "last_seq": int(info.state.last_seq)}

    async def end_offsets(self) -> Clock:
        last = await self._last_seq()
        self._seen = max(self._seen, last)
        return {self._partition: last}

    async def _last_seq(self) -> int:
        # last_seq survives purges (the stream is then empty with first_seq = last_seq + 1): it is the end.
        # Asked of the stream's leader: with none (one died or froze), give up as soon as an append would.
        # A plain request, reading one number of the reply: the client's stream_info() builds the whole info
        # (config, cluster, state) as objects, and every write's catch-up asks this (bench_fleet).
        with self._mapped_errors():
            reply = await self._nc.request(f"$JS.API.STREAM.INFO.{self._stream}", b"",
                                           timeout=self._append_timeout)
            info = _raise_for_reply(reply.data)
        return int(info["state"]["last_seq"])

    async def commit_position(self, consumer: str, clock: Clock) -> None:
        """Merge ``clock`` into what ``consumer`` committed before (per partition), compare-and-set."""
        kv = await self._positions()
        key = _position_key(consumer)
        for _ in range(5):
            with self._mapped_errors():
                try:
                    entry = await kv.get(key)
                except nats.js.errors.KeyNotFoundError:
                    with contextlib.suppress(nats.js.errors.KeyWrongLastSequenceError):
                        await kv.create(key, json.dumps(clock).encode())
                        return
                    continue
                merged = {**json.loads(entry.value or b"{}"), **clock}
                with contextlib.suppress(nats.js.errors.KeyWrongLastSequenceError):
                    await kv.update(key, json.dumps(merged).encode(), last=entry.revision)
                    return
        msg = f"position of {consumer!r} keeps changing under us; is another process committing it?"
        raise LogUnavailableError(msg)

    async def committed_position(self, consumer: str) -> Clock:
        kv = await self._positions()
        with self._mapped_errors():
            try:
                entry = await kv.get(_position_key(consumer))
            except nats.js.errors.KeyNotFoundError:
                return {}
        return {str(k): int(v) for k, v in json.loads(entry.value or b"{}").items()}

    async def _positions(self) -> KeyValue:
        """The positions bucket, created on first use (file storage; reads go to the leader, not replicas)."""
        if self._kv is None:
            placement = api.Placement(cluster=self._shape.cluster) if self._shape.cluster else None
            config = api.KeyValueConfig(bucket=positions_bucket(self._stream), history=1, placement=placement,
                                        storage=api.StorageType.FILE, replicas=self._replicas, direct=False)
            with self._mapped_errors():
                self._kv = await self._js.create_key_value(config)
        return self._kv

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        following, self._following = self._following, None
        with contextlib.suppress(nats.errors.Error, TimeoutError, OSError):
            if following is not None:  # stops its heartbeat and flow-control tasks; the server drops the consumer
                await following.unsubscribe()
            if self._owns_connection:
                await finish_within(self._nc.close(), _CLOSE_WITHIN, name="nats-close")


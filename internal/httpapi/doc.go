// Package httpapi serves a log.Store over HTTP/JSON with Echo: the /v1 API
// of streams, events, snapshots and aggregate state, bulk NDJSON appends,
// feeds across streams (all, category, type) as pages, streams and live
// subscriptions, consumer groups (when the store is a log.GroupStore), and
// /healthz, /readyz, /metrics, /openapi.json (the OpenAPI 3.1 description
// of all of it, openapi.json, which package spectest holds the HTTP tests'
// traffic to), and, with Config.Console, the web console's files at /ui
// (package console), which need no key.
//
// Handlers are thin: each validates its request, calls one Store method
// with the request's context and encodes the result or returns the error.
// Errors become RFC 9457 application/problem+json responses in one place,
// ProblemFor, with a stable "code" (and "current_version" on a version
// conflict); nothing from the driver is ever sent. Every response carries
// X-Request-Id (the request's own when usable, else generated); every problem
// has it as "request_id" and every log line of the request as request_id.
// With Config.TracerProvider set, each request is an OpenTelemetry server
// span named by method and route, continuing the request's traceparent.
// Every GET route answers HEAD; one whose GET streams or is a long read
// answers it with the status its GET would start with, without reading
// events (head.go).
//
//	400 invalid_json            syntax, wrong JSON type, unknown or repeated member, trailing data
//	400 invalid_stream_id, invalid_event, invalid_expected_version, invalid_version, invalid_request (query/path)
//	400 invalid_encoding        corrupt gzip/zstd body
//	400 invalid_feed, invalid_position  unknown feed kind or bad name; a position token this server did not issue
//	400 invalid_group, invalid_member (consumer groups); invalid_key (admin key routes)
//	401 unauthenticated         no, malformed, unknown, expired or revoked token (WWW-Authenticate: Bearer)
//	403 forbidden               the key's scopes do not allow the request (a bulk line: in its result);
//	    invalid_member_secret   a group member's request without its secret (Eventlog-Member-Secret)
//	    authentication_disabled the admin key routes, on a server without Config.Auth
//	404 stream_not_found, snapshot_not_found, group_not_found, key_not_found, event_not_found, not_found (route)
//	405 method_not_allowed      (with Allow)
//	409 wrong_expected_version  (+ current_version), idempotency_conflict,
//	    group_feed_mismatch, lease_lost (+ partitions), key_exists,
//	    too_many_groups, too_many_members (the groups' caps)
//	413 payload_too_large       body over its limit after decompression; too_many_events,
//	                            event_too_large, snapshot_too_large for the log.Limits
//	415 unsupported_media_type  Content-Type not JSON (NDJSON for bulk), unknown Content-Encoding
//	421 invalid_host            a Host header outside Config.AllowedHosts (DNS rebinding);
//	    not_owner               internal routes only: a forwarded append or flush for a shard this instance does not own
//	422 invalid_snapshot_version snapshot version outside 1..head
//	429 too_many_subscriptions  subscription caps, per server and per key (Retry-After);
//	    too_many_long_reads     Config.MaxLongReads long reads at once, MaxLongReadsPerKey a key, and apart
//	                            from them MaxGroupReads consumer group reads (Retry-After);
//	    rate_limited            a key past its rate (Retry-After)
//	500 internal, snapshot_corrupt, data_corrupt
//	501 not_implemented         feeds, the stream catalog or the cluster view, on a store that has none
//	503 unavailable             store unreachable or refusing; nothing was written;
//	    leave_incomplete        a leave removed the member but did not release all its partitions (repeat it)
//	504 outcome_unknown         a write that may or may not have happened; retry with the same ids
//
// Invariants:
//   - With Config.Auth set, every route but /healthz and /readyz needs an
//     active API key (middleware authenticate), and each handler checks
//     the key's scopes for its stream, feed or group (allow, allowFeed)
//     before it reads the body or asks the store anything: a refused
//     request writes nothing and learns nothing. Every answer carries
//     X-Content-Type-Options: nosniff and Cache-Control: no-store (the
//     console's files, Config.Console, replace the latter with no-cache
//     and an ETag).
//   - Reads stream: replay (Accept: application/x-ndjson), pages and state
//     are written as the store yields events, in batches of at most
//     flushBytes plus one event, never held whole. Each flush extends the
//     connection's write deadline (Config.WriteTimeout), so a long replay
//     lives as long as the client reads. A stream that fails after its
//     first bytes is cut (the client sees a truncated body), never ended
//     as if complete.
//   - A panic serving a request is 500 internal (or, once a stream's
//     first bytes are out, a cut stream), logged at error level with its
//     stack (observe), and the process goes on. That holds for a panic on
//     a goroutine the request started too (a fan-out of reads, a page
//     read ahead, a batch written in the background): those run under
//     internal/fanout, which raises it again on the request's goroutine,
//     and observe logs the stack of the goroutine where it happened. The
//     poller the live subscriptions of a stream or feed share belongs to
//     no request: a panic there is logged with its stack once, ends the
//     poller and its subscriptions (a cut stream, or 500 internal before
//     the answer started) and the next subscription starts a new one
//     (pollerSet.broke).
//   - Request bodies are limited after decompression (gzip, zstd with a
//     bounded window), and append bodies are decoded strictly: exact member
//     names, no unknown or repeated members (so no client-set "version" or
//     "time"), no trailing data.
//   - An append whose result could not be determined is reported as
//     outcome_unknown, never as success, conflict or unavailable. Appends
//     are detached from client cancellation (bounded by AppendTimeout), so
//     a hang-up or a graceful shutdown does not interrupt a write half-way
//     from the server's side.
//   - Feed positions are opaque tokens of the store's (log.FeedStore):
//     this layer passes them through and the store refuses those it did
//     not issue. A store never returns an event past what it can vouch
//     for, so reading on from a page's "next", a stream's Eventlog-Next
//     trailer or any event's "position" (an SSE id:) skips nothing and
//     repeats nothing.
//     Live subscriptions, stream and feed alike, share one loop (follow):
//     read what is new, write it straight to the connection, wait. The
//     idle subscriptions of one stream or feed share one poller (poller.go),
//     so they cost the store one read per poll, not one each.
//   - What a client can make the server log at will (4xx answers, a
//     kind per status, with a key or without; failed TLS handshakes
//     through ErrorLog) is written at most LogFloodLines a LogFloodWindow
//     of each kind; the rest is counted (logflood.go).
//   - Event JSON is {"id","type","version","time","data","metadata"}: data
//     and metadata are the stored JSON, metadata is omitted when absent,
//     time is RFC 3339 UTC with six fractional digits.
package httpapi

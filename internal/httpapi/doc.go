// Package httpapi serves a log.Store over HTTP/JSON with Echo: the /v1 API
// of streams, events, snapshots and aggregate state, bulk NDJSON appends,
// and /healthz, /readyz, /metrics.
//
// Handlers are thin: each validates its request, calls one Store method
// with the request's context and encodes the result or returns the error.
// Errors become RFC 9457 problem+json responses in one place, ProblemFor,
// with a stable "code" per error; nothing from the driver is ever sent.
//
// Invariants:
//   - Reads stream: replay (Accept: application/x-ndjson), pages and state
//     are written as the store yields events, in batches of at most
//     flushBytes plus one event, never held whole. A stream that fails
//     after its first bytes is cut (the client sees a truncated body),
//     never ended as if complete.
//   - Request bodies are limited after decompression (gzip, zstd), and
//     append bodies are decoded strictly: exact member names, no unknown or
//     repeated members, no trailing data.
//   - An append whose result could not be determined is reported as
//     outcome_unknown (504), never as success, conflict or "unavailable".
//   - Appends are detached from client cancellation (bounded by
//     AppendTimeout), so a hang-up or a graceful shutdown does not
//     interrupt a write half-way from the server's side.
package httpapi

// Package tracing sets up OpenTelemetry tracing for the server and traces
// the store: Setup builds the tracer provider (an OTLP/HTTP exporter
// configured by the standard OTEL_* environment variables) when tracing is
// on, and Store decorates a log.Store so every store call is a child span
// of the request's span (httpapi starts one per request, continuing a
// traceparent the client sent).
//
// Tracing is off unless asked for: without it the tracer provider is the
// no-op one, the decorator is not installed, and nothing is exported. The
// decorator keeps the optional interfaces of the store it wraps (feeds,
// consumer groups, watchers), so the HTTP layer serves the same routes with
// it as without it.
package tracing

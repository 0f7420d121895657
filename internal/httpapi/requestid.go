package httpapi

import (
	"context"
	"log/slog"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"
)

// HeaderRequestID carries a request's id: taken from the request when the
// client (or a proxy) sent a usable one, else generated, and echoed on
// every response.
const HeaderRequestID = "X-Request-Id"

// maxRequestIDLen bounds an id taken from a request.
const maxRequestIDLen = 128

type requestIDKey struct{}

// RequestID returns the id of the request ctx belongs to ("" outside one).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

func withRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// requestID is the id to use for a request that sent sent (may be ""): sent
// itself if it is 1..128 printable ASCII characters without spaces,
// double quotes or backslashes (it goes into logs and JSON as is), else a
// new random UUID.
func requestID(sent string) string {
	if len(sent) > 0 && len(sent) <= maxRequestIDLen {
		ok := true
		for i := 0; i < len(sent) && ok; i++ {
			c := sent[i]
			ok = c > ' ' && c < 0x7f && c != '"' && c != '\\'
		}
		if ok {
			return sent
		}
	}
	return uuid.NewString()
}

// contextHandler adds the request id and trace of a record's context to
// it, so every log line written with a request's context names the request
// (and its trace, when it is traced).
type contextHandler struct{ slog.Handler }

func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h contextHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return contextHandler{h.Handler.WithAttrs(as)}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.Handler.WithGroup(name)}
}

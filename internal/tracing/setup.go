package tracing

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Enabled reports whether tracing is on: forced by the server's --tracing
// flag, or asked for by the environment as OpenTelemetry SDKs do (an OTLP
// endpoint is set), unless OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none.
func Enabled(flag bool, getenv func(string) string) bool {
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") || getenv("OTEL_TRACES_EXPORTER") == "none" {
		return false
	}
	return flag || getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Setup returns the tracer provider to use and a function that flushes and
// stops it. When tracing is off it returns the no-op provider. When on, the
// OTLP/HTTP exporter reads its settings from the OTEL_EXPORTER_OTLP_*
// variables (endpoint, headers, timeout, TLS), the sampler from
// OTEL_TRACES_SAMPLER (default: parent-based, always on) and the resource
// from OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; version is recorded
// as service.version. The W3C trace context propagator is installed
// globally, so traceparent headers are honoured. The SDK's own errors (a
// batch the collector refused or did not answer) go to logger, at warn
// level, so they are lines of the server's log format (--log-format)
// rather than the standard library logger's plain text on stderr.
func Setup(ctx context.Context, on bool, version string, getenv func(string) string, logger *slog.Logger) (trace.TracerProvider, func(context.Context) error, error) {
	if !on {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	proto := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if proto != "" && proto != "http/protobuf" {
		return nil, nil, fmt.Errorf("OTLP protocol %q is not supported: eventlog exports traces over http/protobuf", proto)
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("otlp trace exporter: %w", err)
	}
	// Later options win: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
	// override the defaults.
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName("eventlog"), semconv.ServiceVersion(version)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("trace resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Warn("tracing", "error", err)
	}))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return tp, tp.Shutdown, nil
}

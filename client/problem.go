package client

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// Problem is an error answered by the server: an RFC 9457 problem details
// object with eventlog's stable Code. Every non-2xx response becomes a
// *Problem; one that is not problem+json (a proxy's error page) gets the
// status, its standard title and the start of the body as Detail, and no
// Code.
//
// Match codes with errors.Is and the Err… sentinels, which compare Code
// only; use errors.As for the fields:
//
//	if errors.Is(err, client.ErrWrongExpectedVersion) { … }
//	var p *client.Problem
//	if errors.As(err, &p) { log.Print(p.Status, p.Code, p.CurrentVersion) }
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Code is eventlog's machine-readable error code (the Code… constants).
	Code string `json:"code"`
	// CurrentVersion is the stream's version with wrong_expected_version
	// (0: the stream has no events); 0 otherwise.
	CurrentVersion int64 `json:"current_version,omitempty"`
	// Line is, in a bulk result, the 1-based index of the append in the
	// slice given to AppendBulk; 0 otherwise.
	Line int `json:"line,omitempty"`
	// Partitions are, with lease_lost, the partitions refused.
	Partitions []int `json:"partitions,omitempty"`
	// RequestID is the id the server gave the request (X-Request-Id): its
	// log lines carry it.
	RequestID string `json:"request_id,omitempty"`
}

// Error returns "code: detail" (the status stands in for a missing
// code).
func (p *Problem) Error() string {
	s := p.Code
	if s == "" {
		s = strconv.Itoa(p.Status)
		if t := http.StatusText(p.Status); t != "" {
			s += " " + t
		}
	}
	if p.Detail != "" {
		s += ": " + p.Detail
	}
	return s
}

// Is reports whether target is a *Problem with the same, non-empty Code.
// It makes errors.Is(err, ErrStreamNotFound) work for any problem the
// server sends with that code.
func (p *Problem) Is(target error) bool {
	t, ok := target.(*Problem)
	return ok && t.Code != "" && t.Code == p.Code
}

// Retryable reports whether the same request may succeed if sent again:
// the store was unavailable (nothing written) or the outcome of a write is
// unknown (retry it with the same event ids), a gateway failed (502,
// 503, 504), or the server serves as many long reads, or consumer group
// reads, as it may (429 too_many_long_reads). The client retries these by
// itself.
func (p *Problem) Retryable() bool {
	switch {
	case p.Code == CodeUnavailable, p.Code == CodeOutcomeUnknown, p.Code == CodeTooManyLongReads:
		return true
	case p.Status == http.StatusBadGateway, p.Status == http.StatusServiceUnavailable, p.Status == http.StatusGatewayTimeout:
		return true
	}
	return false
}

// Problem codes the server sends (README, "Errors").
const (
	CodeInvalidJSON            = "invalid_json"
	CodeInvalidStreamID        = "invalid_stream_id"
	CodeInvalidEvent           = "invalid_event"
	CodeInvalidExpectedVersion = "invalid_expected_version"
	CodeInvalidVersion         = "invalid_version"
	CodeInvalidRequest         = "invalid_request"
	CodeInvalidFeed            = "invalid_feed"
	CodeInvalidPosition        = "invalid_position"
	CodeInvalidEncoding        = "invalid_encoding"
	CodeUnsupportedMediaType   = "unsupported_media_type"
	CodePayloadTooLarge        = "payload_too_large"
	CodeTooManyEvents          = "too_many_events"
	CodeEventTooLarge          = "event_too_large"
	CodeSnapshotTooLarge       = "snapshot_too_large"
	CodeStreamNotFound         = "stream_not_found"
	CodeSnapshotNotFound       = "snapshot_not_found"
	CodeEventNotFound          = "event_not_found"
	CodeNotFound               = "not_found"
	CodeMethodNotAllowed       = "method_not_allowed"
	CodeWrongExpectedVersion   = "wrong_expected_version"
	CodeIdempotencyConflict    = "idempotency_conflict"
	CodeInvalidSnapshotVersion = "invalid_snapshot_version"
	CodeSnapshotCorrupt        = "snapshot_corrupt"
	CodeDataCorrupt            = "data_corrupt"
	CodeInternal               = "internal"
	CodeNotImplemented         = "not_implemented"
	CodeUnavailable            = "unavailable"
	CodeOutcomeUnknown         = "outcome_unknown"
	CodeUnauthenticated        = "unauthenticated"
	CodeForbidden              = "forbidden"
	CodeTooManySubscriptions   = "too_many_subscriptions"
	CodeTooManyLongReads       = "too_many_long_reads"
)

// Sentinels for errors.Is; each matches any *Problem with its code.
var (
	// ErrWrongExpectedVersion: the stream was not at the expected version;
	// the *Problem's CurrentVersion says where it is.
	ErrWrongExpectedVersion = sentinel(http.StatusConflict, CodeWrongExpectedVersion)
	// ErrIdempotencyConflict: event ids were reused, but not as a retry of
	// the same append (only some of them, reordered, or another payload).
	ErrIdempotencyConflict = sentinel(http.StatusConflict, CodeIdempotencyConflict)
	// ErrStreamNotFound: the stream has no events.
	ErrStreamNotFound = sentinel(http.StatusNotFound, CodeStreamNotFound)
	// ErrEventNotFound: no event with that id in the server's event index.
	ErrEventNotFound = sentinel(http.StatusNotFound, CodeEventNotFound)
	// ErrSnapshotNotFound: no snapshot at or below the requested version.
	ErrSnapshotNotFound = sentinel(http.StatusNotFound, CodeSnapshotNotFound)
	// ErrInvalidSnapshotVersion: a snapshot version outside 1..head.
	ErrInvalidSnapshotVersion = sentinel(http.StatusUnprocessableEntity, CodeInvalidSnapshotVersion)
	// ErrUnavailable: the store could not be reached; nothing was written,
	// except by an AckGroup of several partitions that failed part way
	// (the Problem's Detail names those applied; repeating it is safe).
	// Returned once the retry policy's attempts are spent.
	ErrUnavailable = sentinel(http.StatusServiceUnavailable, CodeUnavailable)
	// ErrOutcomeUnknown: a write may or may not have been applied. Besides
	// the server's outcome_unknown it also matches a write whose connection
	// failed after the request may have been sent, and a write whose
	// retries ended (attempts spent, context done) after such a failure.
	// Sending the same append again, with the same event ids, is safe.
	ErrOutcomeUnknown = sentinel(http.StatusGatewayTimeout, CodeOutcomeUnknown)
	// ErrUnauthenticated: no token, or one that is malformed, unknown,
	// expired or revoked (Options.Token).
	ErrUnauthenticated = sentinel(http.StatusUnauthorized, CodeUnauthenticated)
	// ErrForbidden: the key's scopes do not allow the request.
	ErrForbidden = sentinel(http.StatusForbidden, CodeForbidden)
)

func sentinel(status int, code string) *Problem {
	return &Problem{Type: "urn:eventlog:problem:" + code, Title: http.StatusText(status), Status: status, Code: code}
}

// maxProblemBytes bounds how much of an error body is read.
const maxProblemBytes = 64 << 10

// problemFrom reads the error response res (not closing it).
func problemFrom(res *http.Response) *Problem {
	body, _ := io.ReadAll(io.LimitReader(res.Body, maxProblemBytes))
	mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	if mt == "application/problem+json" || mt == "application/json" {
		var p Problem
		if json.Unmarshal(body, &p) == nil && (p.Code != "" || p.Status != 0) {
			if p.Status == 0 {
				p.Status = res.StatusCode
			}
			return &p
		}
	}
	detail := strings.TrimSpace(string(body))
	if len(detail) > 200 {
		detail = detail[:200] + "…"
	}
	return &Problem{Title: http.StatusText(res.StatusCode), Status: res.StatusCode, Detail: detail}
}

// transportError is a failed exchange: no connection, a connection reset
// or timed out, or a response body cut short. Such failures are retried.
// For a write whose request may have reached the server (anything but a
// failed dial), the outcome is unknown and the error matches
// ErrOutcomeUnknown.
type transportError struct {
	err          error
	maybeApplied bool
}

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

func (e *transportError) Is(target error) bool {
	return e.maybeApplied && target == ErrOutcomeUnknown
}

func newTransportError(err error, write bool) *transportError {
	var op *net.OpError
	dial := errors.As(err, &op) && op.Op == "dial"
	return &transportError{err: err, maybeApplied: write && !dial && !certificateError(err)}
}

// retryable reports whether err is worth another attempt. A server
// certificate that fails verification is not: the next handshake fails
// the same way.
func retryable(err error) bool {
	var p *Problem
	if errors.As(err, &p) {
		return p.Retryable()
	}
	var te *transportError
	return errors.As(err, &te) && !certificateError(err)
}

// certificateError reports whether err is the server's certificate failing
// verification (unknown authority, wrong host name, expired): the TLS
// handshake failed, so the request was not sent, and what would fix it is
// configuration (the CA the client trusts, the URL's host), not time.
func certificateError(err error) bool {
	var ve *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(err, &ve) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci)
}

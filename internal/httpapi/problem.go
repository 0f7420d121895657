package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/eventlog/eventlog/internal/auth"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/labstack/echo/v5"
)

// Problem is an RFC 9457 problem details object. Code is eventlog's stable,
// machine-readable error code; Detail is a human message that never carries
// driver text or internals.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	Code   string `json:"code"`

	// Extension members.
	CurrentVersion *int64 `json:"current_version,omitempty"` // wrong_expected_version
	Line           int    `json:"line,omitempty"`            // bulk: 1-based input line
	Partitions     []int  `json:"partitions,omitempty"`      // lease_lost: the partitions refused
	// RequestID is the request's X-Request-Id, to find its log lines.
	RequestID string `json:"request_id,omitempty"`
}

// Error makes a Problem returnable from handlers as is.
func (p *Problem) Error() string { return p.Code + ": " + p.Detail }

// StatusCode implements echo.HTTPStatusCoder.
func (p *Problem) StatusCode() int { return p.Status }

// MediaTypeProblem is the content type of every error response.
const MediaTypeProblem = "application/problem+json"

// problemTypeBase prefixes a code to form the problem "type" URI.
const problemTypeBase = "urn:eventlog:problem:"

// Codes this package adds to those of internal/log.
const (
	CodeInvalidJSON          = "invalid_json"
	CodeInvalidEncoding      = "invalid_encoding"
	CodeUnsupportedMediaType = "unsupported_media_type"
	CodePayloadTooLarge      = "payload_too_large"
	CodeStreamNotFound       = "stream_not_found"
	CodeSnapshotNotFound     = "snapshot_not_found"
	CodeSnapshotCorrupt      = "snapshot_corrupt"
	CodeDataCorrupt          = "data_corrupt"
	CodeWrongExpectedVersion = "wrong_expected_version"
	CodeIdempotencyConflict  = "idempotency_conflict"
	CodeOutcomeUnknown       = "outcome_unknown"
	CodeUnavailable          = "unavailable"
	CodeNotFound             = "not_found"
	CodeMethodNotAllowed     = "method_not_allowed"
	CodeNotImplemented       = "not_implemented"
	CodeInternal             = "internal"
	CodeGroupNotFound        = "group_not_found"
	CodeEventNotFound        = "event_not_found"
	CodeGroupFeedMismatch    = "group_feed_mismatch"
	CodeLeaseLost            = "lease_lost"
	CodeInvalidMemberSecret  = "invalid_member_secret"
	CodeLeaveIncomplete      = "leave_incomplete"
	CodeTooManyGroups        = "too_many_groups"
	CodeTooManyMembers       = "too_many_members"
	CodeUnauthenticated      = "unauthenticated"
	CodeForbidden            = "forbidden"
	CodeKeyExists            = "key_exists"
	CodeKeyNotFound          = "key_not_found"
	CodeInvalidHost          = "invalid_host"
	CodeTooManySubscriptions = "too_many_subscriptions"
	CodeTooManyLongReads     = "too_many_long_reads"
	CodeRateLimited          = "rate_limited"
	// CodeAuthenticationDisabled answers the admin key routes of a server
	// that does not authenticate (Config.Auth nil).
	CodeAuthenticationDisabled = "authentication_disabled"
	// CodeNotOwner answers only forwarded appends and flushes (the
	// internal routes).
	CodeNotOwner = "not_owner"
)

// validationStatus is the HTTP status of each log.ValidationError code.
// Limits on size and count are 413; a snapshot version outside 1..head is
// 422 (the request is well formed but names a version the stream does not
// have); everything else is a plain 400.
var validationStatus = map[string]int{
	log.CodeInvalidStreamID:     http.StatusBadRequest,
	log.CodeInvalidEvent:        http.StatusBadRequest,
	log.CodeInvalidRequest:      http.StatusBadRequest,
	log.CodeInvalidVersion:      http.StatusBadRequest,
	log.CodeInvalidExpectedVers: http.StatusBadRequest,
	log.CodeTooManyEvents:       http.StatusRequestEntityTooLarge,
	log.CodeEventTooLarge:       http.StatusRequestEntityTooLarge,
	log.CodeSnapshotTooLarge:    http.StatusRequestEntityTooLarge,
	log.CodeSnapshotVersion:     http.StatusUnprocessableEntity,
	log.CodeInvalidFeed:         http.StatusBadRequest,
	log.CodeInvalidPosition:     http.StatusBadRequest,
	auth.CodeInvalidKey:         http.StatusBadRequest,
}

// newProblem builds a problem with the standard title for status.
func newProblem(status int, code, detail string) *Problem {
	return &Problem{
		Type:   problemTypeBase + code,
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
		Code:   code,
	}
}

// ProblemFor is the one table from errors to HTTP problems. Errors it does
// not know become 500 internal with a generic detail: their text (which may
// come from the driver) is logged, never sent.
func ProblemFor(err error) *Problem {
	var (
		p   *Problem
		ve  *log.ValidationError
		we  *log.WrongExpectedVersionError
		mbe *http.MaxBytesError
		he  *echo.HTTPError
		sc  echo.HTTPStatusCoder
		ee  *encodingError
		te  *transportError
		ll  *log.LeaseLostError
		pa  *log.PartialAckError
		ce  *log.CorruptError
	)
	switch {
	case errors.As(err, &p):
		return p
	// Body limits first: a decoder may wrap the read error in its own.
	case errors.Is(err, errBodyTooLarge), errors.As(err, &mbe):
		return newProblem(http.StatusRequestEntityTooLarge, CodePayloadTooLarge, "request body exceeds the size limit (after decompression)")
	case errors.As(err, &ee):
		return newProblem(http.StatusBadRequest, CodeInvalidEncoding, "the compressed request body is corrupt")
	case errors.As(err, &te):
		return newProblem(http.StatusBadRequest, log.CodeInvalidRequest, "the request body could not be read")
	case errors.Is(err, auth.ErrNoCredentials):
		return newProblem(http.StatusUnauthorized, CodeUnauthenticated, "this request needs an API key: Authorization: Bearer <token>")
	case errors.Is(err, auth.ErrInvalidToken):
		return newProblem(http.StatusUnauthorized, CodeUnauthenticated, "the bearer token is malformed, unknown, expired or revoked")
	case errors.Is(err, auth.ErrForbidden):
		return newProblem(http.StatusForbidden, CodeForbidden, "the API key's scopes do not allow this request")
	case errors.Is(err, auth.ErrKeyExists):
		return newProblem(http.StatusConflict, CodeKeyExists, "a key of that name exists (names of revoked keys are not reused)")
	case errors.Is(err, auth.ErrKeyNotFound):
		return newProblem(http.StatusNotFound, CodeKeyNotFound, "no key of that name")
	case errors.Is(err, log.ErrLeaveIncomplete):
		// Before the causes it wraps: the member's row is deleted, so
		// 503's "nothing was written" (or 504's "may not have been") would
		// be false.
		return newProblem(http.StatusServiceUnavailable, CodeLeaveIncomplete,
			"the member has left the group, but releasing the partitions it held failed (or its outcome is unknown): they are taken by other members once their leases lapse (within the lease TTL and its grace); repeating the leave releases them at once and is safe")
	case errors.As(err, &ve):
		status, ok := validationStatus[ve.Code]
		if !ok {
			status = http.StatusBadRequest
		}
		return newProblem(status, ve.Code, ve.Message)
	case errors.As(err, &we):
		pr := newProblem(http.StatusConflict, CodeWrongExpectedVersion, we.Error())
		cur := we.Current
		pr.CurrentVersion = &cur
		return pr
	case errors.Is(err, log.ErrNotOwner):
		return newProblem(http.StatusMisdirectedRequest, CodeNotOwner, "this instance does not own the stream's shard; nothing was written")
	case errors.Is(err, log.ErrIdempotencyConflict):
		return newProblem(http.StatusConflict, CodeIdempotencyConflict,
			"the append repeats only some stored event ids, or reuses a stored id with a different payload")
	case errors.Is(err, log.ErrStreamNotYet):
		return newProblem(http.StatusNotFound, CodeStreamNotFound, "the stream had no events at or before that moment")
	case errors.Is(err, log.ErrStreamNotFound):
		return newProblem(http.StatusNotFound, CodeStreamNotFound, "the stream has no events")
	case errors.Is(err, log.ErrEventNotFound):
		return newProblem(http.StatusNotFound, CodeEventNotFound, "no event with this id in the event index (see GET /v1/events/{id} for its window)")
	case errors.Is(err, log.ErrGroupNotFound):
		return newProblem(http.StatusNotFound, CodeGroupNotFound, "no member ever joined this group")
	case errors.Is(err, log.ErrGroupFeedMismatch):
		return newProblem(http.StatusConflict, CodeGroupFeedMismatch, "the group follows another feed; a group's feed never changes")
	case errors.Is(err, log.ErrMemberSecret):
		return newProblem(http.StatusForbidden, CodeInvalidMemberSecret,
			"this member's requests need the secret its first join answered, in the Eventlog-Member-Secret header (a member that left or expired joins again)")
	case errors.Is(err, log.ErrTooManyGroups):
		return newProblem(http.StatusConflict, CodeTooManyGroups, "the keyspace has as many consumer groups as allowed: delete one first")
	case errors.Is(err, log.ErrTooManyMembers):
		return newProblem(http.StatusConflict, CodeTooManyMembers, "the group has as many live members as allowed")
	case errors.As(err, &pa):
		// Part of the request was applied: 503's "nothing was written"
		// would be false.
		pr := ProblemFor(pa.Err)
		pr.Detail = partialAckDetail(pr, pa)
		return pr
	case errors.As(err, &ll):
		pr := newProblem(http.StatusConflict, CodeLeaseLost,
			"the member does not hold these partitions (lease expired, released or taken over): join again to learn its partitions; acknowledgements of the others were applied")
		pr.Partitions = ll.Partitions
		return pr
	case errors.Is(err, log.ErrSnapshotNotFound):
		return newProblem(http.StatusNotFound, CodeSnapshotNotFound, "no snapshot at or below the requested version")
	// Outcome unknown before unavailable and deadlines: a write that may
	// have happened must never read as "not applied".
	case errors.Is(err, log.ErrOutcomeUnknown):
		return newProblem(http.StatusGatewayTimeout, CodeOutcomeUnknown,
			"the write may or may not have been applied; retrying the same request with the same event ids is safe")
	case errors.Is(err, log.ErrUnavailable), errors.Is(err, errPeerRefused), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return newProblem(http.StatusServiceUnavailable, CodeUnavailable, "the store is unavailable; nothing was written")
	case errors.Is(err, log.ErrSnapshotCorrupt):
		detail := "the stored snapshot failed its integrity check"
		if errors.As(err, &ce) {
			detail = "the stored " + ce.Where() + " failed its integrity check"
		}
		return newProblem(http.StatusInternalServerError, CodeSnapshotCorrupt, detail)
	case errors.As(err, &ce):
		return newProblem(http.StatusInternalServerError, CodeDataCorrupt,
			"stored data failed its integrity check and is not served: "+ce.Where()+" (an operator can find every such row with server verify)")
	case errors.Is(err, echo.ErrNotFound):
		return newProblem(http.StatusNotFound, CodeNotFound, "no such resource")
	case errors.Is(err, echo.ErrMethodNotAllowed):
		return newProblem(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "method not allowed on this resource")
	case errors.As(err, &he):
		return fromStatus(he.Code)
	case errors.As(err, &sc):
		return fromStatus(sc.StatusCode())
	}
	return newProblem(http.StatusInternalServerError, CodeInternal, "internal error")
}

// partialAckDetail says what an acknowledgement request that failed part
// way (pa; pr is the problem of its cause) did.
func partialAckDetail(pr *Problem, pa *log.PartialAckError) string {
	d := fmt.Sprintf("the acknowledgements of partitions %v were applied", pa.Acked)
	if len(pa.Acked) == 0 {
		d = "no acknowledgement was applied"
	}
	if len(pa.Lost) > 0 {
		// Named here, in the detail: the status is the failure's (503, 504).
		d += fmt.Sprintf(", partitions %v are not held by the member (lease lost)", pa.Lost)
	}
	if pr.Code == CodeOutcomeUnknown {
		d += "; the others may or may not have been (a write's outcome is unknown)"
	} else {
		d += "; the others were not: the store is unavailable"
	}
	return d + "; repeating the request is safe (an applied acknowledgement is a no-op again; a repeated release without a position is 409 lease_lost once applied)"
}

// fromStatus covers Echo's own status errors (no detail of theirs is sent).
func fromStatus(status int) *Problem {
	switch status {
	case http.StatusNotFound:
		return newProblem(status, CodeNotFound, "no such resource")
	case http.StatusMethodNotAllowed:
		return newProblem(status, CodeMethodNotAllowed, "method not allowed on this resource")
	case http.StatusUnsupportedMediaType:
		return newProblem(status, CodeUnsupportedMediaType, "unsupported media type")
	case http.StatusRequestEntityTooLarge:
		return newProblem(status, CodePayloadTooLarge, "request body too large")
	case http.StatusServiceUnavailable:
		return newProblem(status, CodeUnavailable, "service unavailable")
	}
	if status >= 400 && status < 500 {
		return newProblem(status, log.CodeInvalidRequest, http.StatusText(status))
	}
	return newProblem(http.StatusInternalServerError, CodeInternal, "internal error")
}

// errorHandler is the Echo HTTPErrorHandler: it writes the problem for err,
// and logs 5xx causes (which are not sent).
func (s *Server) errorHandler(c *echo.Context, err error) {
	if r, _ := echo.UnwrapResponse(c.Response()); r != nil && r.Committed {
		return
	}
	p := *ProblemFor(err) // a copy: a *Problem error may be shared
	p.RequestID = RequestID(c.Request().Context())
	// A key refused past the middleware (by a stream's owner, through a
	// forwarded flush) gets the challenge the middleware would send.
	if h := c.Response().Header(); h.Get(echo.HeaderWWWAuthenticate) == "" {
		switch {
		case errors.Is(err, auth.ErrInvalidToken):
			h.Set(echo.HeaderWWWAuthenticate, challengeInvalid)
		case errors.Is(err, auth.ErrForbidden):
			h.Set(echo.HeaderWWWAuthenticate, challengeScope)
		}
	}
	if p.Status >= 500 {
		attrs := []any{"method", c.Request().Method, "route", routeLabel(c), "status", p.Status, "code", p.Code, "error", err}
		s.log.ErrorContext(c.Request().Context(), "request failed", append(attrs, s.countCorrupt(err)...)...)
	}
	if err := writeProblem(c.Response(), &p); err != nil {
		s.log.DebugContext(c.Request().Context(), "write problem", "error", err)
	}
}

func writeProblem(w http.ResponseWriter, p *Problem) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set(echo.HeaderContentType, MediaTypeProblem)
	h.Del(echo.HeaderContentEncoding)
	w.WriteHeader(p.Status)
	_, err = w.Write(append(b, '\n'))
	return err
}

// invalidRequest is a 400 for a malformed query or path parameter.
func invalidRequest(detail string) error {
	return &log.ValidationError{Code: log.CodeInvalidRequest, Message: detail}
}

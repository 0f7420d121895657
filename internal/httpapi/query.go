package httpapi

import (
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/eventlog/eventlog/internal/log"
)

// MediaTypeNDJSON selects the streaming replay of a read and is the body
// type of bulk appends.
const MediaTypeNDJSON = "application/x-ndjson"

// readQuery is the parsed query of GET /v1/streams/{stream}/events.
type readQuery struct {
	From     int64 // >= 1
	To       int64 // 0: the head
	Limit    int   // 1..max page size (ignored by the NDJSON replay)
	Backward bool
	// UntilTime limits the read to events committed at or before it; zero:
	// no limit.
	UntilTime time.Time
}

// parseReadQuery validates from, to, limit, direction and until_time. from
// defaults to 1, to to the head (0), limit to defLimit; a limit above
// maxLimit is capped to it (the page's "next" lets the client go on).
func parseReadQuery(q url.Values, defLimit, maxLimit int) (readQuery, error) {
	rq := readQuery{From: 1, Limit: defLimit}
	var err error
	if rq.From, err = intParam(q, "from", 1, 1); err != nil {
		return rq, err
	}
	if rq.To, err = intParam(q, "to", 0, 0); err != nil {
		return rq, err
	}
	if rq.To != 0 && rq.To < rq.From {
		return rq, invalidRequest(fmt.Sprintf("to (%d) is below from (%d)", rq.To, rq.From))
	}
	limit, err := intParam(q, "limit", int64(defLimit), 1)
	if err != nil {
		return rq, err
	}
	rq.Limit = int(min(limit, int64(maxLimit)))
	switch d, err := valueParam(q, "direction"); {
	case err != nil:
		return rq, err
	case d == "", d == "forward":
	case d == "backward":
		rq.Backward = true
	default:
		return rq, invalidRequest(`direction must be "forward" or "backward"`)
	}
	if rq.UntilTime, err = timeParam(q, "until_time"); err != nil {
		return rq, err
	}
	return rq, nil
}

// boolParam parses the parameter name (at most once in q): "true" or
// "false", false when absent.
func boolParam(q url.Values, name string) (bool, error) {
	switch v, err := valueParam(q, name); {
	case err != nil:
		return false, err
	case v == "" || v == "false":
		return false, nil
	case v == "true":
		return true, nil
	}
	return false, invalidRequest(name + ` must be "true" or "false"`)
}

// timeParam parses the RFC 3339 time parameter name (at most once in q);
// the zero time when absent. A '+' of the offset that arrives as a space
// (it was not percent-encoded) is taken for the '+' it was. The zero time
// itself, 0001-01-01T00:00:00Z, becomes one nanosecond later, as the core
// reads a zero time as "none": for commit times, which have millisecond
// precision, the answer is the same.
func timeParam(q url.Values, name string) (time.Time, error) {
	s, err := valueParam(q, name)
	if err != nil || s == "" {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, strings.ReplaceAll(s, " ", "+"))
	if err != nil {
		return time.Time{}, invalidRequest(fmt.Sprintf("%s must be an RFC 3339 time such as 2026-01-02T15:04:05.123Z", name))
	}
	if t.IsZero() {
		t = t.Add(time.Nanosecond)
	}
	return t, nil
}

// canonicalInt parses s as a decimal integer written the one way the API
// writes it: no '+', no leading zeros, no "-0". "+1" and "01" are not
// taken for 1: a version (or any count) that a client wrote otherwise is
// more likely a bug of its own than a request for 1, and one spelling per
// value keeps URLs (caches, logs, signatures) one per resource.
func canonicalInt(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || strconv.FormatInt(n, 10) != s {
		return 0, false
	}
	return n, true
}

// intParam parses the integer parameter name (at most once in q, in its
// canonical form: canonicalInt), def when absent; values below minimum
// are rejected.
func intParam(q url.Values, name string, def, minimum int64) (int64, error) {
	s, err := valueParam(q, name)
	if err != nil || s == "" {
		return def, err
	}
	n, ok := canonicalInt(s)
	if !ok {
		return 0, invalidRequest(fmt.Sprintf("%s must be an integer in decimal, without a sign or leading zeros", name))
	}
	if n < minimum {
		return 0, invalidRequest(fmt.Sprintf("%s must be at least %d", name, minimum))
	}
	return n, nil
}

// valueParam is stringParam for a parameter whose empty value means
// nothing (a number, a time, a boolean, a choice): "" when absent, and a
// present but empty one ("?at_time=", a template's unfilled blank) is 400
// invalid_request rather than taken for absent, which would answer
// another question (the head for a moment, the default for a limit)
// without a word.
func valueParam(q url.Values, name string) (string, error) {
	s, err := stringParam(q, name)
	if err == nil && s == "" && q.Has(name) {
		return "", invalidRequest(fmt.Sprintf("%s is empty: give a value or leave it out", name))
	}
	return s, err
}

// stringParam returns the parameter name (at most once in q), "" when
// absent or empty: for strings whose empty value is their absent one
// (prefix, after, a feed's from).
func stringParam(q url.Values, name string) (string, error) {
	vs := q[name]
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		return vs[0], nil
	}
	return "", invalidRequest(fmt.Sprintf("%s given more than once", name))
}

// lastEventID is the Last-Event-ID header of a subscription, trimmed; ""
// when absent. Given more than once it is 400 invalid_request, as a
// repeated query parameter is: which one the client meant is not for the
// server to guess.
func lastEventID(r *http.Request) (string, error) {
	vs := r.Header.Values("Last-Event-ID")
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		return strings.TrimSpace(vs[0]), nil
	}
	return "", invalidRequest("Last-Event-ID given more than once")
}

// streamParam validates the {stream} path parameter.
func streamParam(s string) (log.StreamID, error) {
	return log.ParseStreamID(s)
}

// snapshotVersionParam parses the {version} of a snapshot path: not an
// integer is 400; below 1 is 422 invalid_snapshot_version (the store checks
// the upper bound, the stream's head).
func snapshotVersionParam(s string) (int64, error) {
	v, ok := canonicalInt(s)
	if !ok {
		return 0, invalidRequest("the snapshot version must be an integer in decimal, without a sign or leading zeros")
	}
	if v < 1 {
		return 0, &log.ValidationError{Code: log.CodeSnapshotVersion, Message: fmt.Sprintf("snapshot version %d is below 1", v)}
	}
	return v, nil
}

// wantsNDJSON reports whether the Accept header asks for
// application/x-ndjson (with a non-zero quality). Anything else gets JSON.
func wantsNDJSON(r *http.Request) bool {
	for _, h := range r.Header.Values("Accept") {
		for _, part := range strings.Split(h, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil || !strings.EqualFold(mt, MediaTypeNDJSON) {
				continue
			}
			if q, ok := params["q"]; ok {
				if f, err := strconv.ParseFloat(q, 64); err == nil && f == 0 {
					continue
				}
			}
			return true
		}
	}
	return false
}

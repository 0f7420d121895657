package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"

	"github.com/eventlog/eventlog/internal/log"
)

// traceparentKey is the metadata member an append's W3C traceparent is
// recorded in (Config.RecordTraceparent).
const traceparentKey = "traceparent"

// traceparentRE is a W3C Trace Context traceparent of version 00 with a
// non-zero trace and parent id (https://www.w3.org/TR/trace-context/).
var traceparentRE = regexp.MustCompile(`^00-(?:[0-9a-f]{32})-(?:[0-9a-f]{16})-[0-9a-f]{2}$`)

// withTraceparent records the request's traceparent header in the
// metadata of each event that has none, when Config.RecordTraceparent is
// set, so a consumer can continue the producer's trace. The value is the
// header as the client sent it (not this server's span), so a retry that
// sends the same header stores the same bytes and is still recognised as
// a retry. A missing, malformed or all-zero header records nothing.
func (s *Server) withTraceparent(r *http.Request, evs []log.ProposedEvent) []log.ProposedEvent {
	if !s.cfg.RecordTraceparent {
		return evs
	}
	tp := r.Header.Get("Traceparent")
	if !traceparentRE.MatchString(tp) || tp[3:35] == "00000000000000000000000000000000" || tp[36:52] == "0000000000000000" {
		return evs
	}
	member, _ := json.Marshal(tp)
	for i := range evs {
		evs[i].Metadata = addMember(evs[i].Metadata, member)
	}
	return evs
}

// addMember returns metadata (a JSON object, or empty) with "traceparent"
// set to value first, unless it already has one.
func addMember(meta json.RawMessage, value []byte) json.RawMessage {
	// Trimmed: the object's '{' is looked for at meta[0] below (the
	// append decoder hands values over without the space around them, but
	// this must not depend on it).
	if meta = bytes.TrimSpace(meta); string(meta) == "null" {
		meta = nil
	}
	if len(meta) > 0 {
		var m map[string]json.RawMessage
		if json.Unmarshal(meta, &m) != nil {
			return meta // not an object: the store refuses it
		}
		if _, ok := m[traceparentKey]; ok {
			return meta
		}
	}
	out := append([]byte(`{"`+traceparentKey+`":`), value...)
	rest := []byte("}")
	if len(meta) > 0 {
		i := 1
		for i < len(meta) && (meta[i] == ' ' || meta[i] == '\t' || meta[i] == '\n' || meta[i] == '\r') {
			i++
		}
		if meta[i] != '}' {
			out = append(out, ',')
		}
		rest = meta[i:]
	}
	return append(out, rest...)
}

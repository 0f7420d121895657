package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/log"
)

// appendBody is a decoded append request: the body of
// POST /v1/streams/{stream}/events, or one line of POST /v1/events (which
// also names its Stream).
type appendBody struct {
	Stream   string
	Expected log.ExpectedVersion
	Events   []log.ProposedEvent
}

// decodeOptions shape what decodeAppend accepts.
type decodeOptions struct {
	// WithStream requires a "stream" member (bulk lines).
	WithStream bool
	// MaxEvents stops decoding after this many events (too_many_events),
	// before the rest of a large body is held in memory. 0: no limit.
	MaxEvents int
	// StrictPayloads refuses event data and metadata with duplicate
	// member names, invalid UTF-8 (escaped lone surrogates included) or
	// nesting deeper than MaxPayloadDepth (invalid_event). Otherwise only
	// raw invalid UTF-8 is refused.
	StrictPayloads  bool
	MaxPayloadDepth int
}

// decodeOptions are the server's options for an append body, or a bulk
// line (withStream).
func (s *Server) decodeOptions(withStream bool) decodeOptions {
	return decodeOptions{WithStream: withStream, MaxEvents: s.cfg.Limits.MaxEventsPerAppend,
		StrictPayloads: s.cfg.StrictPayloads, MaxPayloadDepth: s.cfg.MaxPayloadDepth}
}

// decodeAppend reads one append request from r, strictly:
//
//   - The body is exactly one JSON object; trailing data is invalid_json.
//   - Members are matched exactly (case-sensitive); unknown or repeated
//     members, at the top level or in an event, are invalid_json, and so is
//     a member of the wrong JSON type. Clients cannot set server-owned
//     fields such as "version" or "time".
//   - Values of the right shape that break a rule (an id that is not a
//     canonical UUID, bad UTF-8 in data) are invalid_event; a bad
//     expected_version is invalid_expected_version.
//   - data and metadata are kept as raw JSON (AppendRequest.Validate, run
//     by the store, compacts them so a retry that re-serialises differently
//     still matches the stored payload). A null or absent metadata is
//     absent.
//
// It does not apply log.Limits beyond MaxEvents: AppendRequest.Validate
// does. Errors reading r (size limit, corrupt compression) are returned as
// they are.
func decodeAppend(r io.Reader, opt decodeOptions) (appendBody, error) {
	er := &errReader{r: r}
	// Duplicate names and invalid UTF-8 are this decoder's to judge (a
	// payload's own duplicate keys are the client's business unless
	// --strict-payloads), so the tokenizer is told to let them through.
	d := &decoder{dec: jsontext.NewDecoder(er, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)), er: er, opt: opt}
	body, err := d.body()
	if err != nil {
		return appendBody{}, d.fail(err)
	}
	return body, nil
}

// errReader remembers the first read error, so a decode failure caused by
// the body's transport or size limit is reported as that, not as bad JSON.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// decoder reads an append body token by token with jsontext, which reads
// tokens and values without allocating (encoding/json's Token API took
// ~90 allocations and a tenth of the server's CPU per 1-event append).
type decoder struct {
	dec *jsontext.Decoder
	er  *errReader
	opt decodeOptions
}

// fail prefers the read error over the JSON error it caused.
func (d *decoder) fail(err error) error {
	if d.er.err != nil {
		return d.er.err
	}
	var ve *log.ValidationError
	var p *Problem
	if errors.As(err, &ve) || errors.As(err, &p) {
		return err
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return badJSON("%v", err)
}

func badJSON(format string, args ...any) error {
	return newProblem(http.StatusBadRequest, CodeInvalidJSON, fmt.Sprintf(format, args...))
}

func badEvent(format string, args ...any) error {
	return &log.ValidationError{Code: log.CodeInvalidEvent, Message: fmt.Sprintf(format, args...)}
}

// Members of the body and of an event, as bits of a seen set.
const (
	memberExpected = 1 << iota
	memberEvents
	memberStream
	memberID
	memberType
	memberData
	memberMetadata
)

func (d *decoder) body() (appendBody, error) {
	var b appendBody
	b.Expected = log.Any
	if err := d.delim('{', "the request body must be a JSON object"); err != nil {
		return b, err
	}
	var seen int
	for d.more() {
		key, err := d.key()
		if err != nil {
			return b, err
		}
		var bit int
		switch {
		case key == "expected_version":
			bit = memberExpected
		case key == "events":
			bit = memberEvents
		case key == "stream" && d.opt.WithStream:
			bit = memberStream
		default:
			return b, badJSON("unknown member %q", key)
		}
		if seen&bit != 0 {
			return b, badJSON("member %q appears twice", key)
		}
		seen |= bit
		switch bit {
		case memberExpected:
			raw, err := d.dec.ReadValue()
			if err != nil {
				return b, err
			}
			if raw.Kind() != 'n' {
				if err := b.Expected.UnmarshalJSON(raw); err != nil {
					return b, err
				}
			}
		case memberEvents:
			if b.Events, err = d.events(); err != nil {
				return b, err
			}
		case memberStream:
			if b.Stream, err = d.str("stream"); err != nil {
				return b, err
			}
		}
	}
	if err := d.delim('}', ""); err != nil {
		return b, err
	}
	if _, err := d.dec.ReadToken(); err != io.EOF {
		if d.er.err != nil {
			return b, d.er.err
		}
		return b, badJSON("unexpected data after the JSON object")
	}
	if d.opt.WithStream && seen&memberStream == 0 {
		return b, &log.ValidationError{Code: log.CodeInvalidStreamID, Message: `a bulk line needs a "stream" member`}
	}
	return b, nil
}

// more reports whether the object or array being read has another member
// or element (false at its end or at an error, which the next read
// returns).
func (d *decoder) more() bool {
	k := d.dec.PeekKind()
	return k != '}' && k != ']' && k != 0
}

func (d *decoder) events() ([]log.ProposedEvent, error) {
	switch d.dec.PeekKind() {
	case 'n': // "events": null reads as no events
		_, err := d.dec.ReadToken()
		return nil, err
	case '[':
	case 0:
		_, err := d.dec.ReadToken()
		return nil, err
	default:
		return nil, badJSON(`"events" must be an array`)
	}
	if _, err := d.dec.ReadToken(); err != nil {
		return nil, err
	}
	var evs []log.ProposedEvent
	for d.more() {
		if d.opt.MaxEvents > 0 && len(evs) == d.opt.MaxEvents {
			return nil, &log.ValidationError{Code: log.CodeTooManyEvents,
				Message: fmt.Sprintf("an append may hold at most %d events", d.opt.MaxEvents)}
		}
		ev, err := d.event(len(evs))
		if err != nil {
			return nil, err
		}
		evs = append(evs, ev)
	}
	if _, err := d.dec.ReadToken(); err != nil { // ']'
		return nil, err
	}
	return evs, nil
}

func (d *decoder) event(i int) (log.ProposedEvent, error) {
	var ev log.ProposedEvent
	if d.dec.PeekKind() != '{' {
		if _, err := d.dec.ReadValue(); err != nil {
			return ev, err
		}
		return ev, badJSON("events[%d] must be a JSON object", i)
	}
	if _, err := d.dec.ReadToken(); err != nil {
		return ev, err
	}
	// The "events[i]." prefix of messages is made only for an error.
	prefix := func() string { return fmt.Sprintf("events[%d].", i) }
	var seen int
	for d.more() {
		key, err := d.key()
		if err != nil {
			return ev, err
		}
		var bit int
		switch key {
		case "id":
			bit = memberID
		case "type":
			bit = memberType
		case "data":
			bit = memberData
		case "metadata":
			bit = memberMetadata
		default:
			return ev, badJSON("unknown member %q", prefix()+key)
		}
		if seen&bit != 0 {
			return ev, badJSON("member %q appears twice", prefix()+key)
		}
		seen |= bit
		switch bit {
		case memberID:
			raw, err := d.dec.ReadValue()
			if err != nil {
				return ev, err
			}
			switch raw.Kind() {
			case 'n':
				continue
			case '"':
			default:
				return ev, badJSON("%sid must be a string", prefix())
			}
			// A canonical UUID has no escapes: its 36 characters are the
			// raw value's bytes between the quotes.
			id, err := uuid.ParseBytes(raw[1 : len(raw)-1])
			if err != nil || len(raw) != 38 || id == uuid.Nil {
				return ev, badEvent("%sid must be a non-nil UUID in canonical form (8-4-4-4-12 hex digits)", prefix())
			}
			ev.ID = id
		case memberType:
			if ev.Type, err = d.str(prefix() + "type"); err != nil {
				return ev, err
			}
		case memberData:
			if ev.Data, err = d.payload(prefix, "data"); err != nil {
				return ev, err
			}
		case memberMetadata:
			raw, err := d.payload(prefix, "metadata")
			if err != nil {
				return ev, err
			}
			if !isNull(raw) {
				ev.Metadata = raw
			}
		}
	}
	if _, err := d.dec.ReadToken(); err != nil { // '}'
		return ev, err
	}
	if seen&memberType == 0 {
		return ev, badEvent("%stype is required", prefix())
	}
	if seen&memberData == 0 {
		return ev, badEvent("%sdata is required", prefix())
	}
	return ev, nil
}

// key reads an object member name.
func (d *decoder) key() (string, error) {
	if d.dec.PeekKind() != '"' {
		if _, err := d.dec.ReadToken(); err != nil {
			return "", err
		}
		return "", badJSON("expected a member name")
	}
	tok, err := d.dec.ReadToken()
	if err != nil {
		return "", err
	}
	return tok.String(), nil
}

func (d *decoder) delim(want jsontext.Kind, msg string) error {
	tok, err := d.dec.ReadToken()
	if err != nil {
		return err
	}
	if tok.Kind() != want {
		if msg == "" {
			msg = fmt.Sprintf("expected %q", string(want))
		}
		return badJSON("%s", msg)
	}
	return nil
}

func (d *decoder) str(name string) (string, error) {
	if d.dec.PeekKind() != '"' {
		if _, err := d.dec.ReadValue(); err != nil {
			return "", err
		}
		return "", badJSON("%s must be a string", name)
	}
	tok, err := d.dec.ReadToken()
	if err != nil {
		return "", err
	}
	return tok.String(), nil
}

// payload reads a JSON value to store, which must be valid UTF-8 (a copy:
// the decoder's buffer is reused).
func (d *decoder) payload(prefix func() string, name string) (json.RawMessage, error) {
	raw, err := d.dec.ReadValue()
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(raw) {
		return nil, badEvent("%s is not valid UTF-8", prefix()+name)
	}
	if d.opt.StrictPayloads {
		if err := checkStrictPayload(raw, d.opt.MaxPayloadDepth); err != nil {
			return nil, badEvent("%s %v (--strict-payloads)", prefix()+name, err)
		}
	}
	return json.RawMessage(bytes.Clone(raw)), nil
}

// checkStrictPayload reports why raw, one JSON value, breaks the strict
// payload rules: a member name repeated in an object, invalid UTF-8 or a
// lone surrogate (\ud800) in a string, or nesting deeper than maxDepth.
// jsontext's default options refuse the first two.
func checkStrictPayload(raw []byte, maxDepth int) error {
	dec := jsontext.NewDecoder(bytes.NewReader(raw))
	for {
		_, err := dec.ReadToken()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			var se *jsontext.SyntacticError
			if errors.As(err, &se) && se.Err != nil {
				if se.JSONPointer != "" {
					return fmt.Errorf("is not strict JSON at %q: %v", se.JSONPointer, se.Err)
				}
				return fmt.Errorf("is not strict JSON: %v", se.Err)
			}
			return fmt.Errorf("is not strict JSON: %v", err)
		}
		if maxDepth > 0 && dec.StackDepth() > maxDepth {
			return fmt.Errorf("nests deeper than %d levels", maxDepth)
		}
	}
}

func isNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

// requireMediaType fails with 415 unless the request's Content-Type is one
// of want (parameters such as charset are allowed).
func requireMediaType(r *http.Request, want ...string) error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil {
		for _, w := range want {
			if strings.EqualFold(mt, w) {
				return nil
			}
		}
	}
	return newProblem(http.StatusUnsupportedMediaType, CodeUnsupportedMediaType,
		fmt.Sprintf("Content-Type must be %s", strings.Join(want, " or ")))
}

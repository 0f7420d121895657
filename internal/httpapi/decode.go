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

	"github.com/eventlog/eventlog/internal/log"
	"github.com/google/uuid"
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
	d := &decoder{dec: json.NewDecoder(er), er: er, opt: opt}
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

type decoder struct {
	dec *json.Decoder
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

func (d *decoder) body() (appendBody, error) {
	var b appendBody
	b.Expected = log.Any
	if err := d.delim('{', "the request body must be a JSON object"); err != nil {
		return b, err
	}
	seen := map[string]bool{}
	for d.dec.More() {
		key, err := d.key(seen, "")
		if err != nil {
			return b, err
		}
		switch {
		case key == "expected_version":
			raw, err := d.raw()
			if err != nil {
				return b, err
			}
			if !isNull(raw) {
				if err := b.Expected.UnmarshalJSON(raw); err != nil {
					return b, err
				}
			}
		case key == "events":
			if b.Events, err = d.events(); err != nil {
				return b, err
			}
		case key == "stream" && d.opt.WithStream:
			if b.Stream, err = d.str("stream"); err != nil {
				return b, err
			}
		default:
			return b, badJSON("unknown member %q", key)
		}
	}
	if err := d.delim('}', ""); err != nil {
		return b, err
	}
	if _, err := d.dec.Token(); err != io.EOF {
		if err == nil {
			return b, badJSON("unexpected data after the JSON object")
		}
		return b, err
	}
	if d.opt.WithStream && !seen["stream"] {
		return b, &log.ValidationError{Code: log.CodeInvalidStreamID, Message: `a bulk line needs a "stream" member`}
	}
	return b, nil
}

func (d *decoder) events() ([]log.ProposedEvent, error) {
	tok, err := d.dec.Token()
	if err != nil {
		return nil, err
	}
	if tok == nil { // "events": null reads as no events
		return nil, nil
	}
	if tok != json.Delim('[') {
		return nil, badJSON(`"events" must be an array`)
	}
	var evs []log.ProposedEvent
	for d.dec.More() {
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
	if _, err := d.dec.Token(); err != nil { // ']'
		return nil, err
	}
	return evs, nil
}

func (d *decoder) event(i int) (log.ProposedEvent, error) {
	var ev log.ProposedEvent
	if err := d.delim('{', fmt.Sprintf("events[%d] must be a JSON object", i)); err != nil {
		return ev, err
	}
	seen := map[string]bool{}
	prefix := fmt.Sprintf("events[%d].", i)
	for d.dec.More() {
		key, err := d.key(seen, prefix)
		if err != nil {
			return ev, err
		}
		switch key {
		case "id":
			raw, err := d.raw()
			if err != nil {
				return ev, err
			}
			if isNull(raw) {
				continue
			}
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return ev, badJSON("%sid must be a string", prefix)
			}
			id, err := uuid.Parse(s)
			if err != nil || len(s) != 36 || id == uuid.Nil {
				return ev, badEvent("%sid must be a non-nil UUID in canonical form (8-4-4-4-12 hex digits)", prefix)
			}
			ev.ID = id
		case "type":
			if ev.Type, err = d.str(prefix + "type"); err != nil {
				return ev, err
			}
		case "data":
			if ev.Data, err = d.payload(prefix + "data"); err != nil {
				return ev, err
			}
		case "metadata":
			raw, err := d.payload(prefix + "metadata")
			if err != nil {
				return ev, err
			}
			if !isNull(raw) {
				ev.Metadata = raw
			}
		default:
			return ev, badJSON("unknown member %q", prefix+key)
		}
	}
	if _, err := d.dec.Token(); err != nil { // '}'
		return ev, err
	}
	if !seen["type"] {
		return ev, badEvent("%stype is required", prefix)
	}
	if !seen["data"] {
		return ev, badEvent("%sdata is required", prefix)
	}
	return ev, nil
}

// key reads an object member name and rejects repeats.
func (d *decoder) key(seen map[string]bool, prefix string) (string, error) {
	tok, err := d.dec.Token()
	if err != nil {
		return "", err
	}
	key, ok := tok.(string)
	if !ok {
		return "", badJSON("expected a member name")
	}
	if seen[key] {
		return "", badJSON("member %q appears twice", prefix+key)
	}
	seen[key] = true
	return key, nil
}

func (d *decoder) delim(want json.Delim, msg string) error {
	tok, err := d.dec.Token()
	if err != nil {
		return err
	}
	if tok != want {
		if msg == "" {
			msg = fmt.Sprintf("expected %q", want)
		}
		return badJSON("%s", msg)
	}
	return nil
}

func (d *decoder) raw() (json.RawMessage, error) {
	var raw json.RawMessage
	if err := d.dec.Decode(&raw); err != nil {
		return nil, err
	}
	return raw, nil
}

func (d *decoder) str(name string) (string, error) {
	raw, err := d.raw()
	if err != nil {
		return "", err
	}
	var s string
	if raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", badJSON("%s must be a string", name)
	}
	return s, nil
}

// payload reads a JSON value to store, which must be valid UTF-8.
func (d *decoder) payload(name string) (json.RawMessage, error) {
	raw, err := d.raw()
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(raw) {
		return nil, badEvent("%s is not valid UTF-8", name)
	}
	return raw, nil
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

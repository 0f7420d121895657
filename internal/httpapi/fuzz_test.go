package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/log"
)

// FuzzDecodeAppendAgainstJSON: what the streaming append decoder accepts,
// encoding/json reads as the same request (the same events, ids, types
// and payloads), and with strict payloads every payload is strict JSON
// (no repeated member name, valid UTF-8 without lone surrogates, nesting
// within the limit). A refusal is a client error, never a 5xx.
func FuzzDecodeAppendAgainstJSON(f *testing.F) {
	for _, s := range []string{
		`{"expected_version":"any","events":[{"id":"0190a5c4-7a47-7cc2-9d1e-3c1f6b2a9e01","type":"t","data":{"x":1},"metadata":{"m":[1]}}]}`,
		`{"expected_version":0,"events":[{"type":"a.b","data":[1,"2",null]},{"type":"c","data":"\u00e9\n","metadata":null}]}`,
		`{"stream":"s-1","events":[{"type":"t","data":true}]}`,
		`{"events":[{"type":"t","data":{"a":1,"a":2}}]}`,
		`{"events":[{"type":"t","data":{"a":{"b":{"c":[[[[]]]]}}}}]}`,
		`{"events":[{"type":"t","data":"\ud800"}]}`,
		`{"events":[{"type":"t\u0041","data":1}]}`,
		` {"events" : [ {"data" : 1 , "type" : "t" } ] } `,
	} {
		f.Add([]byte(s), false, false)
		f.Add([]byte(s), true, true)
	}
	const maxDepth = 4
	f.Fuzz(func(t *testing.T, body []byte, bulk, strict bool) {
		b, err := decodeAppend(bytes.NewReader(body), decodeOptions{WithStream: bulk, MaxEvents: 50, StrictPayloads: strict, MaxPayloadDepth: maxDepth})
		if err != nil {
			if p := ProblemFor(err); p.Status >= 500 {
				t.Fatalf("decode error maps to %d %s: %v", p.Status, p.Code, err)
			}
			return
		}
		var ref struct {
			Stream *string `json:"stream"`
			Events []struct {
				ID       *string         `json:"id"`
				Type     string          `json:"type"`
				Data     json.RawMessage `json:"data"`
				Metadata json.RawMessage `json:"metadata"`
			} `json:"events"`
		}
		if err := json.Unmarshal(body, &ref); err != nil {
			t.Fatalf("accepted %q, which encoding/json refuses: %v", body, err)
		}
		if bulk && (ref.Stream == nil || *ref.Stream != b.Stream && utf8.ValidString(*ref.Stream)) {
			t.Fatalf("stream %q, encoding/json reads %v", b.Stream, ref.Stream)
		}
		if len(b.Events) != len(ref.Events) {
			t.Fatalf("%d events, encoding/json reads %d", len(b.Events), len(ref.Events))
		}
		for i, ev := range b.Events {
			r := ref.Events[i]
			switch {
			case r.ID == nil || *r.ID == "null":
				if ev.ID != uuid.Nil && r.ID == nil {
					t.Fatalf("events[%d]: id %s where encoding/json reads none", i, ev.ID)
				}
			case uuid.MustParse(*r.ID) != ev.ID:
				t.Fatalf("events[%d]: id %s, encoding/json reads %s", i, ev.ID, *r.ID)
			}
			if ev.Type != r.Type && utf8.ValidString(ev.Type) {
				t.Fatalf("events[%d]: type %q, encoding/json reads %q", i, ev.Type, r.Type)
			}
			if !bytes.Equal(compactJSON(t, ev.Data), compactJSON(t, r.Data)) {
				t.Fatalf("events[%d]: data %s, encoding/json reads %s", i, ev.Data, r.Data)
			}
			if ev.Metadata != nil && !bytes.Equal(compactJSON(t, ev.Metadata), compactJSON(t, r.Metadata)) {
				t.Fatalf("events[%d]: metadata %s, encoding/json reads %s", i, ev.Metadata, r.Metadata)
			}
			if ev.Metadata == nil && r.Metadata != nil && string(r.Metadata) != "null" {
				t.Fatalf("events[%d]: no metadata, encoding/json reads %s", i, r.Metadata)
			}
			if !strict {
				continue
			}
			for _, p := range [][]byte{ev.Data, ev.Metadata} {
				if p == nil {
					continue
				}
				dec := jsontext.NewDecoder(bytes.NewReader(p)) // refuses repeated names, bad UTF-8
				for {
					_, err := dec.ReadToken()
					if err != nil {
						if err.Error() != "EOF" {
							t.Fatalf("events[%d]: payload %s accepted with --strict-payloads: %v", i, p, err)
						}
						break
					}
					if dec.StackDepth() > maxDepth {
						t.Fatalf("events[%d]: payload %s nests deeper than %d", i, p, maxDepth)
					}
				}
			}
		}
	})
}

func compactJSON(t *testing.T, raw []byte) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		t.Fatalf("payload %q is not JSON: %v", raw, err)
	}
	return buf.Bytes()
}

// FuzzParseReadQuery: a read's query either parses into a range the
// store can take (from at least 1, to 0 or at least from, a limit within
// the page size) or is refused with 400 invalid_request.
func FuzzParseReadQuery(f *testing.F) {
	for _, s := range []string{
		"", "from=1", "from=5&to=9&limit=10&direction=backward",
		"until_time=2026-01-02T15:04:05.123Z", "until_time=2026-01-02T15:04:05+01:00",
		"until_time=0001-01-01T00:00:00Z", "from=0", "to=3&from=4", "limit=100000",
		"direction=sideways", "from=1&from=2", "limit=-1", "from=9223372036854775807",
		"from=01", "to=%2B3", "limit=-0", "from=1&to=00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		rq, err := parseReadQuery(q, 100, 1000)
		if err != nil {
			if p := ProblemFor(err); p.Status != 400 || p.Code != log.CodeInvalidRequest {
				t.Fatalf("%q: refused as %d %s, want 400 %s", raw, p.Status, p.Code, log.CodeInvalidRequest)
			}
			return
		}
		if rq.From < 1 || rq.To != 0 && rq.To < rq.From || rq.Limit < 1 || rq.Limit > 1000 {
			t.Fatalf("%q: parsed as %+v", raw, rq)
		}
		// Integers are taken in their one spelling only ("01" is not 1).
		if f := q.Get("from"); f != "" && f != strconv.FormatInt(rq.From, 10) || q.Get("to") != "" && q.Get("to") != strconv.FormatInt(rq.To, 10) {
			t.Fatalf("%q: parsed as from %d, to %d", raw, rq.From, rq.To)
		}
		if rq.Backward != (q.Get("direction") == "backward") {
			t.Fatalf("%q: backward %v", raw, rq.Backward)
		}
		if q.Get("until_time") != "" && rq.UntilTime.IsZero() || strings.TrimSpace(q.Get("until_time")) == "" && !rq.UntilTime.IsZero() {
			t.Fatalf("%q: until_time %v", raw, rq.UntilTime)
		}
	})
}

// FuzzAddMember: recording a traceparent in an event's metadata keeps it
// the JSON object it was, with every member it had, plus "traceparent"
// unless it had one; metadata that is not an object is left as it is
// (the store refuses it).
func FuzzAddMember(f *testing.F) {
	for _, s := range []string{``, `null`, `{}`, `{ }`, `{"a":1}`, ` {"a":1} `, "{\n\"a\":[1,{}]}", `{"traceparent":"x"}`, `{"trace\u0070arent":1}`, `[1]`, `"s"`, `{"a":1,"a":2}`} {
		f.Add([]byte(s))
	}
	value := []byte(`"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"`)
	f.Fuzz(func(t *testing.T, meta []byte) {
		if len(bytes.TrimSpace(meta)) > 0 && !json.Valid(meta) {
			return // the decoder hands over valid JSON only
		}
		var before map[string]json.RawMessage
		isObject := json.Unmarshal(meta, &before) == nil && before != nil
		got := addMember(bytes.Clone(meta), value)
		t1 := bytes.TrimSpace(meta)
		if len(t1) > 0 && string(t1) != "null" && !isObject {
			if !bytes.Equal(got, t1) {
				t.Fatalf("%q, not an object, became %q", meta, got)
			}
			return
		}
		var after map[string]json.RawMessage
		if err := json.Unmarshal(got, &after); err != nil || after == nil {
			t.Fatalf("%q became %q, not a JSON object: %v", meta, got, err)
		}
		for k, v := range before {
			if !bytes.Equal(after[k], v) && k != traceparentKey {
				t.Fatalf("%q became %q: member %q lost or changed", meta, got, k)
			}
		}
		if _, had := before[traceparentKey]; !had && !bytes.Equal(after[traceparentKey], value) {
			t.Fatalf("%q became %q: no traceparent", meta, got)
		}
		if len(after) != len(before)+1 && !(len(after) == len(before) && before[traceparentKey] != nil) {
			t.Fatalf("%q became %q: %d members from %d", meta, got, len(after), len(before))
		}
	})
}

// FuzzLineReader: a bulk body splits into the lines a plain split on
// '\n' gives, each without its line ending ("\r\n", or trailing '\r's),
// a line longer than max reported as too long and skipped, and the lines
// after it still read.
func FuzzLineReader(f *testing.F) {
	for _, s := range []string{"", "a\nb\n", "a\r\nb", "\n\n\r\n", "abcdef\nab\n", "abcd\r\r\n", "abcde", "x\n\ry\n"} {
		f.Add([]byte(s), uint8(4))
	}
	f.Fuzz(func(t *testing.T, body []byte, max uint8) {
		type line struct {
			text    string
			tooLong bool
		}
		var want []line
		for _, raw := range bytes.SplitAfter(body, []byte("\n")) {
			if len(raw) == 0 {
				continue // after a final '\n'
			}
			text := bytes.TrimRight(raw, "\r\n")
			if len(raw) > int(max)+2 || len(text) > int(max) {
				want = append(want, line{tooLong: true})
				continue
			}
			want = append(want, line{text: string(text)})
		}
		lr := newLineReader(bytes.NewReader(body), int(max))
		for i := 0; ; i++ {
			got, err := lr.next()
			if err == io.EOF {
				if i != len(want) {
					t.Fatalf("%q: %d lines, want %d", body, i, len(want))
				}
				return
			}
			if i >= len(want) {
				t.Fatalf("%q: line %d past the %d wanted", body, i, len(want))
			}
			if want[i].tooLong {
				if !errors.Is(err, errLineTooLong) {
					t.Fatalf("%q: line %d: %q, %v; want errLineTooLong", body, i, got, err)
				}
				continue
			}
			if err != nil || string(got) != want[i].text {
				t.Fatalf("%q: line %d: %q, %v; want %q", body, i, got, err, want[i].text)
			}
		}
	})
}

// FuzzOpenAfter: a listing's after is a stream id as given, or a sealed
// next: one this server sealed opens to the id it sealed, and anything
// else starting with the sealed prefix is refused (it cannot be forged
// or altered into another id).
func FuzzOpenAfter(f *testing.F) {
	aead, err := newListCursor([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		f.Fatal(err)
	}
	s := &Server{cursor: aead}
	sealed := map[log.StreamID]bool{}
	for _, id := range []log.StreamID{"user-1", "a", "order-2026:x@y+z=w"} {
		c := s.sealCursor(id)
		sealed[id] = true
		f.Add(c)
		f.Add(c[:len(c)-1])
	}
	f.Add("user-1")
	f.Add("~")
	f.Fuzz(func(t *testing.T, after string) {
		id, err := s.openAfter(after)
		if !strings.HasPrefix(after, cursorPrefix) {
			if err != nil || string(id) != after {
				t.Fatalf("plain after %q: %q, %v", after, id, err)
			}
			return
		}
		if err == nil && !sealed[id] {
			t.Fatalf("%q opened to %q, which was never sealed", after, id)
		}
	})
}

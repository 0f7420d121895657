package httpapi

import (
	"errors"
	"strings"
	"testing"

	"github.com/eventlog/eventlog/internal/log"
	"github.com/google/uuid"
)

// codeOf is the problem code an error maps to.
func codeOf(err error) string { return ProblemFor(err).Code }

func TestDecodeAppend(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		b, err := decodeAppend(strings.NewReader(`{"expected_version": 3, "events": [
			{"id": "0190a5c4-7a47-7cc2-9d1e-3c1f6b2a9e01", "type": "user.created", "data": {"a": [1, 2]}, "metadata": {"m": true}},
			{"type": "t", "data": null, "metadata": null}]}`), decodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := b.Expected, log.ExpectedVersion(3); got != want {
			t.Fatalf("expected = %v, want %v", got, want)
		}
		if got, want := len(b.Events), 2; got != want {
			t.Fatalf("events = %d, want %d", got, want)
		}
		e0, e1 := b.Events[0], b.Events[1]
		if got, want := e0.ID, uuid.MustParse("0190a5c4-7a47-7cc2-9d1e-3c1f6b2a9e01"); got != want {
			t.Fatalf("id = %v, want %v", got, want)
		}
		if got, want := string(e0.Data), `{"a": [1, 2]}`; got != want {
			t.Fatalf("data = %s, want %s", got, want)
		}
		if got, want := string(e0.Metadata), `{"m": true}`; got != want {
			t.Fatalf("metadata = %s, want %s", got, want)
		}
		if e1.ID != uuid.Nil || string(e1.Data) != "null" || e1.Metadata != nil {
			t.Fatalf("second event = %+v, want no id, data null, no metadata", e1)
		}
	})
	t.Run("ExpectedVersionDefaultsToAny", func(t *testing.T) {
		for _, body := range []string{`{"events":[]}`, `{"expected_version":null,"events":[]}`} {
			b, err := decodeAppend(strings.NewReader(body), decodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if b.Expected != log.Any {
				t.Fatalf("%s: expected = %v, want any", body, b.Expected)
			}
		}
	})
	t.Run("ExpectedVersionKeywords", func(t *testing.T) {
		for kw, want := range map[string]log.ExpectedVersion{`"any"`: log.Any, `"no_stream"`: log.NoStream, `"exists"`: log.StreamExists, `0`: log.NoStream} {
			b, err := decodeAppend(strings.NewReader(`{"expected_version":`+kw+`,"events":[]}`), decodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if b.Expected != want {
				t.Fatalf("%s: expected = %v, want %v", kw, b.Expected, want)
			}
		}
	})
	t.Run("BulkStream", func(t *testing.T) {
		b, err := decodeAppend(strings.NewReader(`{"stream":"user-1","events":[{"type":"t","data":1}]}`), decodeOptions{WithStream: true})
		if err != nil {
			t.Fatal(err)
		}
		if b.Stream != "user-1" {
			t.Fatalf("stream = %q", b.Stream)
		}
	})

	errCases := []struct {
		name, body string
		opt        decodeOptions
		code       string
	}{
		{"Empty", ``, decodeOptions{}, CodeInvalidJSON},
		{"Syntax", `{"events": [`, decodeOptions{}, CodeInvalidJSON},
		{"NotObject", `[1]`, decodeOptions{}, CodeInvalidJSON},
		{"Trailing", `{"events":[]} {}`, decodeOptions{}, CodeInvalidJSON},
		{"TrailingGarbage", `{"events":[]}x`, decodeOptions{}, CodeInvalidJSON},
		{"UnknownTopLevel", `{"events":[],"foo":1}`, decodeOptions{}, CodeInvalidJSON},
		{"CaseMismatch", `{"Events":[]}`, decodeOptions{}, CodeInvalidJSON},
		{"DuplicateTopLevel", `{"events":[],"events":[]}`, decodeOptions{}, CodeInvalidJSON},
		{"StreamOutsideBulk", `{"stream":"a","events":[]}`, decodeOptions{}, CodeInvalidJSON},
		{"EventsNotArray", `{"events":{}}`, decodeOptions{}, CodeInvalidJSON},
		{"EventNotObject", `{"events":[1]}`, decodeOptions{}, CodeInvalidJSON},
		{"ServerOwnedVersion", `{"events":[{"type":"t","data":1,"version":3}]}`, decodeOptions{}, CodeInvalidJSON},
		{"DuplicateEventMember", `{"events":[{"type":"t","type":"u","data":1}]}`, decodeOptions{}, CodeInvalidJSON},
		{"TypeNotString", `{"events":[{"type":5,"data":1}]}`, decodeOptions{}, CodeInvalidJSON},
		{"IDNotString", `{"events":[{"id":5,"type":"t","data":1}]}`, decodeOptions{}, CodeInvalidJSON},
		{"IDNotUUID", `{"events":[{"id":"nope","type":"t","data":1}]}`, decodeOptions{}, log.CodeInvalidEvent},
		{"IDNotCanonical", `{"events":[{"id":"0190a5c47a477cc29d1e3c1f6b2a9e01","type":"t","data":1}]}`, decodeOptions{}, log.CodeInvalidEvent},
		{"IDNil", `{"events":[{"id":"00000000-0000-0000-0000-000000000000","type":"t","data":1}]}`, decodeOptions{}, log.CodeInvalidEvent},
		{"MissingType", `{"events":[{"data":1}]}`, decodeOptions{}, log.CodeInvalidEvent},
		{"MissingData", `{"events":[{"type":"t"}]}`, decodeOptions{}, log.CodeInvalidEvent},
		{"BadUTF8", "{\"events\":[{\"type\":\"t\",\"data\":\"\xff\"}]}", decodeOptions{}, log.CodeInvalidEvent},
		{"ExpectedNegative", `{"expected_version":-1,"events":[]}`, decodeOptions{}, log.CodeInvalidExpectedVers},
		{"ExpectedFloat", `{"expected_version":1.5,"events":[]}`, decodeOptions{}, log.CodeInvalidExpectedVers},
		{"ExpectedKeyword", `{"expected_version":"latest","events":[]}`, decodeOptions{}, log.CodeInvalidExpectedVers},
		{"TooManyEvents", `{"events":[{"type":"t","data":1},{"type":"t","data":2},{"type":"t","data":3}]}`, decodeOptions{MaxEvents: 2}, log.CodeTooManyEvents},
		{"BulkWithoutStream", `{"events":[]}`, decodeOptions{WithStream: true}, log.CodeInvalidStreamID},
		{"BulkStreamNotString", `{"stream":1,"events":[]}`, decodeOptions{WithStream: true}, CodeInvalidJSON},
	}
	for _, tc := range errCases {
		t.Run("Err"+tc.name, func(t *testing.T) {
			_, err := decodeAppend(strings.NewReader(tc.body), tc.opt)
			if err == nil {
				t.Fatal("no error")
			}
			if got := codeOf(err); got != tc.code {
				t.Fatalf("code = %q, want %q (err %v)", got, tc.code, err)
			}
		})
	}

	t.Run("ErrBodyTooLargeWins", func(t *testing.T) {
		r := newLimitedReader(strings.NewReader(`{"events":[{"type":"t","data":"`+strings.Repeat("x", 100)+`"}]}`), 50, false)
		_, err := decodeAppend(r, decodeOptions{})
		if !errors.Is(err, errBodyTooLarge) {
			t.Fatalf("err = %v, want errBodyTooLarge", err)
		}
		if got, want := codeOf(err), CodePayloadTooLarge; got != want {
			t.Fatalf("code = %q, want %q", got, want)
		}
	})
}

// FuzzDecodeAppend: any input either decodes into a request whose events
// carry valid JSON, or fails with a problem code; never a panic or an
// internal error.
func FuzzDecodeAppend(f *testing.F) {
	for _, s := range []string{
		`{"expected_version":"any","events":[{"id":"0190a5c4-7a47-7cc2-9d1e-3c1f6b2a9e01","type":"t","data":{"x":1},"metadata":{}}]}`,
		`{"expected_version":0,"events":[{"type":"a.b","data":[1,"2",null]}]}`,
		`{"stream":"s-1","events":[{"type":"t","data":true}]}`,
		`{"events":[]}`, `{}`, `[]`, `null`, `{"events":[{"type":"t","data":1}]} x`,
		`{"events":[{"type":"t","data":{"a":{"b":{"c":[[[[]]]]}}}}]}`,
		"{\"events\":[{\"type\":\"t\",\"data\":\"\\ud800\"}]}",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, bulk bool) {
		b, err := decodeAppend(newLimitedReader(strings.NewReader(string(body)), 1<<16, false), decodeOptions{WithStream: bulk, MaxEvents: 50})
		if err != nil {
			if p := ProblemFor(err); p.Status >= 500 {
				t.Fatalf("decode error maps to %d %s: %v", p.Status, p.Code, err)
			}
			return
		}
		if len(b.Events) > 50 {
			t.Fatalf("%d events decoded past MaxEvents", len(b.Events))
		}
		for i, ev := range b.Events {
			if !jsonValid(ev.Data) {
				t.Fatalf("events[%d].data %q is not valid JSON", i, ev.Data)
			}
			if ev.Metadata != nil && !jsonValid(ev.Metadata) {
				t.Fatalf("events[%d].metadata %q is not valid JSON", i, ev.Metadata)
			}
		}
	})
}

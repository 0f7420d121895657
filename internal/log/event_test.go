package log

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestParseStreamID(t *testing.T) {
	for _, ok := range []string{"user-42", "a", "9", "Order_1.2:x@y+z=w-", strings.Repeat("a", 200)} {
		if _, err := ParseStreamID(ok); err != nil || !ValidStreamID(ok) {
			t.Errorf("%q rejected: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-user", "_x", "user 42", "user/42", "ü", strings.Repeat("a", 201), "a\x00"} {
		if ValidStreamID(bad) {
			t.Errorf("%q valid", bad)
		}
		_, err := ParseStreamID(bad)
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Code != CodeInvalidStreamID {
			t.Errorf("%q: got %v", bad, err)
		}
	}
}

func TestCategory(t *testing.T) {
	for in, want := range map[StreamID]string{"user-42": "user", "user-42-x": "user", "user": "user", "a-": "a"} {
		if got := in.Category(); got != want {
			t.Errorf("%s: category %q, want %q", in, got, want)
		}
	}
}

func TestValidateEventType(t *testing.T) {
	for _, ok := range []string{"UserCreated", "user.created:v2", "a_b-c"} {
		if err := ValidateEventType(ok); err != nil || !ValidEventType(ok) {
			t.Errorf("%q rejected", ok)
		}
	}
	for _, bad := range []string{"", "with space", "a/b", "a@b", strings.Repeat("x", 201)} {
		if ValidateEventType(bad) == nil || ValidEventType(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestExpectedVersionJSON(t *testing.T) {
	for in, want := range map[string]ExpectedVersion{`"any"`: Any, `"no_stream"`: NoStream, `"exists"`: StreamExists, `0`: 0, `17`: 17} {
		var e ExpectedVersion
		if err := json.Unmarshal([]byte(in), &e); err != nil || e != want {
			t.Errorf("%s: %v %v", in, e, err)
		}
		out, _ := json.Marshal(e)
		var back ExpectedVersion
		if err := json.Unmarshal(out, &back); err != nil || back != e {
			t.Errorf("%s: round trip via %s gave %v", in, out, back)
		}
	}
	for _, bad := range []string{`-1`, `"ANY"`, `1.5`, `"3"`, `null`, `true`} {
		var e ExpectedVersion
		if err := json.Unmarshal([]byte(bad), &e); err == nil {
			t.Errorf("%s accepted as %v", bad, e)
		}
	}
}

func TestExpectedVersionMatches(t *testing.T) {
	for _, c := range []struct {
		e    ExpectedVersion
		cur  int64
		want bool
	}{{Any, 0, true}, {Any, 9, true}, {NoStream, 0, true}, {NoStream, 1, false}, {StreamExists, 0, false}, {StreamExists, 3, true}, {3, 3, true}, {3, 4, false}} {
		if got := c.e.Matches(c.cur); got != c.want {
			t.Errorf("%v.Matches(%d) = %v", c.e, c.cur, got)
		}
	}
}

func TestAppendRequestValidate(t *testing.T) {
	limits := Limits{MaxEventsPerAppend: 3, MaxEventBytes: 64, MaxSnapshotBytes: 1024}
	ev := func(data string) ProposedEvent { return ProposedEvent{Type: "E", Data: json.RawMessage(data)} }
	id := uuid.Must(uuid.NewV7())

	t.Run("FillsIDsAndCompacts", func(t *testing.T) {
		r := AppendRequest{Stream: "s-1", Expected: Any, Events: []ProposedEvent{ev(`{ "a" : 1 }`), {ID: id, Type: "E", Data: json.RawMessage(`2`), Metadata: json.RawMessage(` null `)}}}
		if err := r.Validate(limits); err != nil {
			t.Fatal(err)
		}
		if r.Events[0].ID == uuid.Nil || r.Events[0].ClientID || string(r.Events[0].Data) != `{"a":1}` {
			t.Fatalf("event 0: %+v", r.Events[0])
		}
		if r.Events[1].ID != id || !r.Events[1].ClientID || r.Events[1].Metadata != nil {
			t.Fatalf("event 1: %+v", r.Events[1])
		}
		generated := r.Events[0].ID
		if err := r.Validate(limits); err != nil || r.Events[0].ClientID || r.Events[0].ID != generated || !r.Events[1].ClientID {
			t.Fatalf("second Validate: %v %+v", err, r.Events)
		}
	})
	for _, c := range []struct {
		name string
		req  AppendRequest
		code string
	}{
		{"NoEvents", AppendRequest{Stream: "s-1", Expected: Any}, CodeInvalidEvent},
		{"TooMany", AppendRequest{Stream: "s-1", Expected: Any, Events: []ProposedEvent{ev("1"), ev("1"), ev("1"), ev("1")}}, CodeTooManyEvents},
		{"BadStream", AppendRequest{Stream: "s 1", Expected: Any, Events: []ProposedEvent{ev("1")}}, CodeInvalidStreamID},
		{"BadType", AppendRequest{Stream: "s-1", Expected: Any, Events: []ProposedEvent{{Type: "a b", Data: json.RawMessage("1")}}}, CodeInvalidEvent},
		{"NoData", AppendRequest{Stream: "s-1", Expected: Any, Events: []ProposedEvent{{Type: "E"}}}, CodeInvalidEvent},
		{"BadData", AppendRequest{Stream: "s-1", Expected: Any, Events: []ProposedEvent{ev("{")}}, CodeInvalidEvent},
		{"MetadataNotObject", AppendRequest{Stream: "s-1", Expected: Any, Events: []ProposedEvent{{Type: "E", Data: json.RawMessage("1"), Metadata: json.RawMessage("[1]")}}}, CodeInvalidEvent},
		{"TooLarge", AppendRequest{Stream: "s-1", Expected: Any, Events: []ProposedEvent{ev(`"` + strings.Repeat("x", 80) + `"`)}}, CodeEventTooLarge},
		{"DuplicateID", AppendRequest{Stream: "s-1", Expected: Any, Events: []ProposedEvent{{ID: id, Type: "E", Data: json.RawMessage("1")}, {ID: id, Type: "E", Data: json.RawMessage("2")}}}, CodeInvalidEvent},
		{"BadExpected", AppendRequest{Stream: "s-1", Expected: -7, Events: []ProposedEvent{ev("1")}}, CodeInvalidExpectedVers},
	} {
		t.Run(c.name, func(t *testing.T) {
			var ve *ValidationError
			if err := c.req.Validate(limits); !errors.As(err, &ve) || ve.Code != c.code {
				t.Fatalf("got %v, want code %s", err, c.code)
			}
		})
	}
}

// TestValidNamesEveryByte: the table-driven checks allow exactly the bytes
// of the grammars, in every position.
func TestValidNamesEveryByte(t *testing.T) {
	for c := range 256 {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		b := string([]byte{byte(c)})
		if got, want := ValidStreamID("a"+b), alnum || strings.Contains("_.:@+=-", b); got != want {
			t.Errorf("stream id a%q: %v, want %v", b, got, want)
		}
		if got, want := ValidStreamID(b+"a"), alnum; got != want {
			t.Errorf("stream id %qa: %v, want %v", b, got, want)
		}
		if got, want := ValidEventType("a"+b+"a"), alnum || strings.Contains("_.:-", b); got != want {
			t.Errorf("event type a%qa: %v, want %v", b, got, want)
		}
	}
}

package httpapi

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/log"
	"github.com/google/uuid"
)

func TestAppendEvent(t *testing.T) {
	id := uuid.MustParse("0190a5c4-7a47-7cc2-9d1e-3c1f6b2a9e01")
	at := time.Date(2026, 11, 1, 13, 4, 5, 123_000_000, time.FixedZone("CET", 3600))
	t.Run("WithMetadata", func(t *testing.T) {
		got := string(appendEvent(nil, &log.RecordedEvent{ID: id, Type: "user.created", Version: 42, Time: at,
			Data: json.RawMessage(`{"a":1}`), Metadata: json.RawMessage(`{"m":"x"}`)}))
		want := `{"id":"0190a5c4-7a47-7cc2-9d1e-3c1f6b2a9e01","type":"user.created","version":42,"time":"2026-11-01T12:04:05.123000Z","data":{"a":1},"metadata":{"m":"x"}}`
		if got != want {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	})
	t.Run("NoMetadata", func(t *testing.T) {
		got := string(appendEvent(nil, &log.RecordedEvent{ID: id, Type: "t", Version: 1, Time: at, Data: json.RawMessage(`[1,2]`)}))
		want := `{"id":"0190a5c4-7a47-7cc2-9d1e-3c1f6b2a9e01","type":"t","version":1,"time":"2026-11-01T12:04:05.123000Z","data":[1,2]}`
		if got != want {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	})
}

func TestAppendFeedEvent(t *testing.T) {
	id := uuid.MustParse("0190a5c4-7a47-7cc2-9d1e-3c1f6b2a9e01")
	at := time.Date(2026, 11, 1, 12, 4, 5, 123_000_000, time.UTC)
	e := &log.FeedEvent{RecordedEvent: log.RecordedEvent{Stream: "user-7", ID: id, Type: "t", Version: 3, Time: at, Data: json.RawMessage(`{}`)}}
	e.Position = "AQAAAZJxZ3TNB3VzZXItNwAAAAAAAAAD" // opaque to the encoder
	got := string(appendFeedEvent(nil, e))
	want := `{"position":"` + e.Position + `","stream":"user-7","id":"0190a5c4-7a47-7cc2-9d1e-3c1f6b2a9e01","type":"t","version":3,"time":"2026-11-01T12:04:05.123000Z","data":{}}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestAppendString(t *testing.T) {
	for in, want := range map[string]string{
		"user-1":      `"user-1"`,
		`a"b\c`:       `"a\"b\\c"`,
		"tab\there\n": `"tab\u0009here\u000a"`,
		"é✓":          `"é✓"`,
		"bad\xffutf8": `"bad\ufffdutf8"`,
	} {
		got := string(appendString(nil, in))
		if got != want {
			t.Errorf("%q: got %s, want %s", in, got, want)
		}
		var back string
		if err := json.Unmarshal([]byte(got), &back); err != nil {
			t.Errorf("%q: %s does not parse: %v", in, got, err)
		}
	}
}

func TestAppendUUID(t *testing.T) {
	for _, u := range []uuid.UUID{uuid.Nil, uuid.Max, uuid.New(), uuid.Must(uuid.NewV7())} {
		if got, want := string(appendUUID([]byte("x"), u)), "x"+u.String(); got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
}

func TestAppendTime(t *testing.T) {
	for _, at := range []time.Time{
		time.Date(2026, 11, 1, 12, 4, 5, 123_456_789, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(2026, 3, 9, 1, 2, 3, 7_000, time.FixedZone("x", -7*3600)),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(0, 0),
	} {
		want := `"` + at.UTC().Format(timeLayout) + `"`
		if got := string(appendTime(nil, at)); got != want {
			t.Errorf("%v: got %s, want %s", at, got, want)
		}
	}
}

// TestEncoderTimes: an encoder that keeps the last time and minute it
// formatted writes what appendEvent writes, as times repeat, change, go
// back, cross minutes and come in another zone.
func TestEncoderTimes(t *testing.T) {
	id := uuid.MustParse("0190a5c4-7a47-7cc2-9d1e-3c1f6b2a9e01")
	base := time.Date(2026, 11, 1, 13, 4, 5, 123_000_000, time.UTC)
	times := []time.Time{
		base, base, base.Add(time.Millisecond), base, base.In(time.FixedZone("CET", 3600)),
		base.Add(24 * time.Hour), base.Add(24 * time.Hour), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), base,
		// Within a minute, across one, the same minute an hour later, and
		// either side of 1970 (the minute is keyed by its Unix second).
		base.Add(time.Second), base.Add(54*time.Second + 877*time.Millisecond), base.Add(55 * time.Second), base.Add(time.Hour),
		time.Unix(-30, 0), time.Unix(30, 0), time.Unix(-90, 5_000), time.Unix(-61, 0), time.Unix(-60, 0), time.Unix(0, 0),
	}
	var enc encoder
	for i, at := range times {
		e := &log.RecordedEvent{Stream: "s-1", ID: id, Type: "t", Version: int64(i + 1), Time: at, Data: json.RawMessage(`{}`)}
		if got, want := string(enc.event(nil, e)), string(appendEvent(nil, e)); got != want {
			t.Fatalf("event %d at %s: encoder wrote %s, want %s", i, at, got, want)
		}
		fe := &log.FeedEvent{RecordedEvent: *e, Position: "p"}
		if got, want := string(enc.feedEvent(nil, fe)), string(appendFeedEvent(nil, fe)); got != want {
			t.Fatalf("feed event %d at %s: encoder wrote %s, want %s", i, at, got, want)
		}
	}
}

// TestPlainRun: the eight-bytes-a-step scan stops where a byte at a time
// does, wherever the byte that needs escaping sits.
func TestPlainRun(t *testing.T) {
	slow := func(s string) int {
		i := 0
		for i < len(s) && s[i] >= 0x20 && s[i] < 0x80 && s[i] != '"' && s[i] != '\\' {
			i++
		}
		return i
	}
	for n := 0; n <= 24; n++ {
		for at := 0; at < n; at++ {
			for _, c := range []byte{0, 0x1f, 0x20, '!', '"', '#', '[', '\\', ']', 0x7f, 0x80, 0xc3, 0xff} {
				b := []byte(strings.Repeat("abcdefgh", 3)[:n])
				b[at] = c
				if got, want := plainRun(string(b)), slow(string(b)); got != want {
					t.Fatalf("%q: %d, want %d", b, got, want)
				}
			}
		}
	}
}

// The hand-written append answer is byte for byte what encoding/json (as
// echo's c.JSON) made of appendResult, for every stream id ParseStreamID
// allows.
func TestAppendAppendResult(t *testing.T) {
	at := time.Date(2026, 12, 5, 4, 5, 6, 789_123_456, time.FixedZone("X", -7200))
	ids := []uuid.UUID{uuid.MustParse("0190a5c4-7a47-7cc2-9d1e-3c1f6b2a9e01"), uuid.MustParse("ffffffff-0000-7000-8000-00000000000a")}
	for _, r := range []log.AppendResult{
		{Stream: "user-1", FirstVersion: 1, LastVersion: 1, Events: []log.AppendedEvent{{ID: ids[0], Version: 1}}, Time: at},
		{Stream: "a_b.c:d@e+f=g-0", FirstVersion: 41, LastVersion: 42, Time: at, Duplicate: true,
			Events: []log.AppendedEvent{{ID: ids[0], Version: 41}, {ID: ids[1], Version: 42}}},
		{Stream: "empty", FirstVersion: 9_007_199_254_740_993, LastVersion: 9_007_199_254_740_993, Events: []log.AppendedEvent{}},
		{Stream: "nil-events"},
	} {
		want, err := json.Marshal(newAppendResult(r))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, '\n')
		if got := appendAppendResult(nil, r); string(got) != string(want) {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
}

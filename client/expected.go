package client

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// ExpectedVersion is the optimistic-concurrency condition of an append.
// Its zero value is Any. Build others with NoStream, Exists and Exact.
type ExpectedVersion struct {
	kind expectKind
	n    int64 // kind == exact
}

type expectKind uint8

const (
	expectAny expectKind = iota
	expectNoStream
	expectExists
	expectExact
)

var (
	// Any appends whatever the stream's version (the default).
	Any = ExpectedVersion{}
	// NoStream requires the stream to have no events yet; same as Exact(0).
	NoStream = ExpectedVersion{kind: expectNoStream}
	// Exists requires the stream to have at least one event.
	Exists = ExpectedVersion{kind: expectExists}
)

// Exact requires the stream to be at version n (0: no events, which is
// NoStream). A negative n makes the append fail before it is sent.
func Exact(n int64) ExpectedVersion {
	if n == 0 {
		return NoStream
	}
	return ExpectedVersion{kind: expectExact, n: n}
}

// Version returns n for Exact(n) (0 for NoStream) and false for Any and
// Exists.
func (e ExpectedVersion) Version() (int64, bool) {
	switch e.kind {
	case expectNoStream:
		return 0, true
	case expectExact:
		return e.n, true
	}
	return 0, false
}

// String returns what the API calls it: "any", "no_stream", "exists" or
// the number.
func (e ExpectedVersion) String() string {
	switch e.kind {
	case expectNoStream:
		return "no_stream"
	case expectExists:
		return "exists"
	case expectExact:
		return strconv.FormatInt(e.n, 10)
	}
	return "any"
}

// MarshalJSON writes the API's form: the integer or the keyword.
func (e ExpectedVersion) MarshalJSON() ([]byte, error) {
	if e.kind == expectExact {
		if e.n < 0 {
			return nil, fmt.Errorf("expected version %d is negative", e.n)
		}
		return strconv.AppendInt(nil, e.n, 10), nil
	}
	return json.Marshal(e.String())
}

// UnmarshalJSON reads an integer ≥ 0 or "any", "no_stream", "exists".
// null leaves e unchanged.
func (e *ExpectedVersion) UnmarshalJSON(b []byte) error {
	if string(bytes.TrimSpace(b)) == "null" {
		return nil
	}
	var s string
	if json.Unmarshal(b, &s) == nil {
		switch s {
		case "any":
			*e = Any
		case "no_stream":
			*e = NoStream
		case "exists":
			*e = Exists
		default:
			return fmt.Errorf("expected version %q: want an integer, \"any\", \"no_stream\" or \"exists\"", s)
		}
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil || n < 0 {
		return fmt.Errorf("expected version %s: want an integer >= 0, \"any\", \"no_stream\" or \"exists\"", b)
	}
	*e = Exact(n)
	return nil
}

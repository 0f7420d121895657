package client

import (
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestProblemIs(t *testing.T) {
	p := &Problem{Status: 409, Code: CodeWrongExpectedVersion, Detail: "stream s: expected 0, current 1", CurrentVersion: 1}
	err := fmt.Errorf("eventlog: append to s: %w", p)
	if !errors.Is(err, ErrWrongExpectedVersion) {
		t.Fatal("a wrapped problem does not match its sentinel")
	}
	if errors.Is(err, ErrIdempotencyConflict) || errors.Is(err, &Problem{}) {
		t.Fatal("a problem matches another code, or an empty one")
	}
	var got *Problem
	if !errors.As(err, &got) || got.CurrentVersion != 1 {
		t.Fatalf("errors.As: %+v", got)
	}
	if got, want := err.Error(), "eventlog: append to s: wrong_expected_version: stream s: expected 0, current 1"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	if got, want := (&Problem{Status: 502}).Error(), "502 Bad Gateway"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}

func TestProblemRetryable(t *testing.T) {
	for _, tc := range []struct {
		p    Problem
		want bool
	}{
		{Problem{Status: 503, Code: CodeUnavailable}, true},
		{Problem{Status: 504, Code: CodeOutcomeUnknown}, true},
		{Problem{Status: 502}, true},
		{Problem{Status: 500, Code: CodeInternal}, false},
		{Problem{Status: 409, Code: CodeWrongExpectedVersion}, false},
		{Problem{Status: 429}, false},
		{Problem{Status: 429, Code: CodeTooManySubscriptions}, false},
		{Problem{Status: 429, Code: CodeTooManyLongReads}, true},
		{Problem{Status: 400, Code: CodeInvalidJSON}, false},
	} {
		if got := tc.p.Retryable(); got != tc.want {
			t.Errorf("%d %s: Retryable() = %v, want %v", tc.p.Status, tc.p.Code, got, tc.want)
		}
	}
}

func TestProblemFrom(t *testing.T) {
	for _, tc := range []struct {
		name        string
		contentType string
		status      int
		body        string
		want        Problem
	}{
		{"Problem", "application/problem+json", 409,
			`{"type":"urn:eventlog:problem:wrong_expected_version","title":"Conflict","status":409,"detail":"d","code":"wrong_expected_version","current_version":0}`,
			Problem{Type: "urn:eventlog:problem:wrong_expected_version", Title: "Conflict", Status: 409, Detail: "d", Code: CodeWrongExpectedVersion}},
		{"HTML", "text/html", 502, "<h1>bad gateway</h1>", Problem{Title: "Bad Gateway", Status: 502, Detail: "<h1>bad gateway</h1>"}},
		{"JSONNotProblem", "application/json", 503, `{"error":"x"}`, Problem{Title: "Service Unavailable", Status: 503, Detail: `{"error":"x"}`}},
		{"Long", "text/plain", 500, strings.Repeat("x", 300), Problem{Title: "Internal Server Error", Status: 500, Detail: strings.Repeat("x", 200) + "…"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			rec.Header().Set("Content-Type", tc.contentType)
			rec.WriteHeader(tc.status)
			io.WriteString(rec, tc.body)
			if got := *problemFrom(rec.Result()); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	p := RetryPolicy{BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}
	p.EnsureDefaults()
	for n, d := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 100: time.Second} {
		for range 100 {
			if got := p.backoff(n); got < d/2 || got > d {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", n, got, d/2, d)
			}
		}
	}
	if err := (&RetryPolicy{MaxAttempts: 1, BaseDelay: time.Second, MaxDelay: time.Millisecond}).Validate(); err == nil {
		t.Fatal("max delay below base delay was accepted")
	}
}

func TestLineReader(t *testing.T) {
	long := strings.Repeat("y", 200<<10) // longer than the read buffer
	for _, tc := range []struct {
		name  string
		in    string
		lines []string
		end   error
	}{
		{"Complete", "a\n\r\nb\r\n", []string{"a", "", "b"}, io.EOF},
		{"Empty", "", nil, io.EOF},
		{"Cut", "a\nbb", []string{"a"}, io.ErrUnexpectedEOF},
		{"Long", long + "\n" + long, []string{long}, io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lr := newLineReader(strings.NewReader(tc.in))
			var got []string
			for {
				line, err := lr.next()
				if err != nil {
					if err != tc.end {
						t.Fatalf("end %v, want %v", err, tc.end)
					}
					break
				}
				got = append(got, string(line))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.lines) {
				t.Fatalf("lines %d, want %d", len(got), len(tc.lines))
			}
		})
	}
}

func TestOptions(t *testing.T) {
	for _, bad := range []string{"127.0.0.1:8080", "ftp://x", "http://", "http://x/?a=1", "http://x/%zz"} {
		if _, err := New(Options{BaseURL: bad}); err == nil {
			t.Errorf("base url %q was accepted", bad)
		}
	}
	c, err := New(Options{BaseURL: "http://example.com/prefix/"})
	if err != nil {
		t.Fatal(err)
	}
	if c.base != "http://example.com/prefix" || c.retry.MaxAttempts != 5 || c.ua != DefaultUserAgent || c.hc == nil {
		t.Fatalf("client %+v", c)
	}
	if _, err := New(Options{Retry: RetryPolicy{MaxAttempts: -1}}); err == nil {
		t.Error("negative max attempts was accepted")
	}
}

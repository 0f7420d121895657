package httpapi

import (
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/eventlog/eventlog/internal/log"
)

func TestParseReadQuery(t *testing.T) {
	for _, tc := range []struct {
		name, query string
		want        readQuery
	}{
		{"Defaults", "", readQuery{From: 1, To: 0, Limit: 100}},
		{"Range", "from=5&to=9&limit=3", readQuery{From: 5, To: 9, Limit: 3}},
		{"ToZeroIsHead", "from=5&to=0", readQuery{From: 5, Limit: 100}},
		{"LimitCapped", "limit=5000", readQuery{From: 1, Limit: 1000}},
		{"Backward", "direction=backward&to=10", readQuery{From: 1, To: 10, Limit: 100, Backward: true}},
		{"Forward", "direction=forward", readQuery{From: 1, Limit: 100}},
		{"FromEqualsTo", "from=4&to=4", readQuery{From: 4, To: 4, Limit: 100}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, _ := url.ParseQuery(tc.query)
			got, err := parseReadQuery(q, 100, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	for _, query := range []string{
		"from=0", "from=-1", "from=x", "from=1.5", "to=-1", "from=5&to=4",
		"limit=0", "limit=-3", "limit=ten", "direction=sideways", "from=1&from=2",
		"from=99999999999999999999", "until_time=yesterday", "until_time=2026-01-01", "until_time=1&until_time=2",
		// Empty is not absent: it would answer another question.
		"from=", "to=", "limit=", "direction=", "until_time=", "from=3&until_time=",
	} {
		t.Run("Err_"+query, func(t *testing.T) {
			q, _ := url.ParseQuery(query)
			_, err := parseReadQuery(q, 100, 1000)
			if err == nil {
				t.Fatal("no error")
			}
			if p := ProblemFor(err); p.Status != 400 || p.Code != log.CodeInvalidRequest {
				t.Fatalf("got %d %s, want 400 invalid_request", p.Status, p.Code)
			}
		})
	}
}

func TestSnapshotVersionParam(t *testing.T) {
	if v, err := snapshotVersionParam("7"); err != nil || v != 7 {
		t.Fatalf("7: got %d, %v", v, err)
	}
	for in, want := range map[string]int{"0": 422, "-2": 422, "x": 400, "": 400, "1e3": 400} {
		_, err := snapshotVersionParam(in)
		if got := ProblemFor(err).Status; got != want {
			t.Fatalf("%q: status %d, want %d", in, got, want)
		}
	}
}

func TestWantsNDJSON(t *testing.T) {
	for accept, want := range map[string]bool{
		"":                                       false,
		"application/json":                       false,
		"application/x-ndjson":                   true,
		"Application/X-NDJSON":                   true,
		"application/json, application/x-ndjson": true,
		"application/x-ndjson;q=0":               false,
		"application/x-ndjson;q=0.5, */*":        true,
		"*/*":                                    false,
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if accept != "" {
			r.Header.Set("Accept", accept)
		}
		if got := wantsNDJSON(r); got != want {
			t.Errorf("Accept %q: got %v, want %v", accept, got, want)
		}
	}
}

func TestRequireMediaType(t *testing.T) {
	for ct, ok := range map[string]bool{
		"application/json":                  true,
		"application/json; charset=utf-8":   true,
		"APPLICATION/JSON":                  true,
		"":                                  false,
		"text/plain":                        false,
		"application/x-www-form-urlencoded": false,
		"application/json-patch+json":       false,
		"application/json;;;":               false,
	} {
		r := httptest.NewRequest("POST", "/", nil)
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		err := requireMediaType(r, "application/json")
		if ok != (err == nil) {
			t.Errorf("Content-Type %q: err = %v", ct, err)
		}
		if err != nil {
			if p := ProblemFor(err); p.Status != 415 || p.Code != CodeUnsupportedMediaType {
				t.Errorf("Content-Type %q: got %d %s", ct, p.Status, p.Code)
			}
		}
	}
}

// TestEmptyParamRefused: a number, time, boolean or choice given empty
// ("?at_time=") is 400 invalid_request, not taken for absent; a string
// whose empty value is its absent one (a feed's from, after, prefix) is
// still taken so.
func TestEmptyParamRefused(t *testing.T) {
	q := url.Values{"x": {""}}
	if _, err := intParam(q, "x", 7, 0); ProblemFor(err).Code != log.CodeInvalidRequest {
		t.Fatalf("intParam: %v", err)
	}
	if _, err := timeParam(q, "x"); ProblemFor(err).Code != log.CodeInvalidRequest {
		t.Fatalf("timeParam: %v", err)
	}
	if _, err := boolParam(q, "x"); ProblemFor(err).Code != log.CodeInvalidRequest {
		t.Fatalf("boolParam: %v", err)
	}
	if err := feedDirection(url.Values{"direction": {""}}); ProblemFor(err).Code != log.CodeInvalidRequest {
		t.Fatalf("feedDirection: %v", err)
	}
	if _, err := subscribeFrom(httptest.NewRequest("GET", "/v1/streams/s/subscribe?from=", nil)); ProblemFor(err).Code != log.CodeInvalidRequest {
		t.Fatalf("subscribeFrom: %v", err)
	}
	if s, err := stringParam(q, "x"); s != "" || err != nil {
		t.Fatalf("stringParam: %q, %v", s, err)
	}
	// Absent is still the default.
	if n, err := intParam(url.Values{}, "x", 7, 0); n != 7 || err != nil {
		t.Fatalf("intParam absent: %d, %v", n, err)
	}
	if v, err := subscribeFrom(httptest.NewRequest("GET", "/v1/streams/s/subscribe", nil)); v != 1 || err != nil {
		t.Fatalf("subscribeFrom absent: %d, %v", v, err)
	}
}

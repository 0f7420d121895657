package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/eventlog/eventlog/internal/log"
)

func TestAppendReadRoundTrip(t *testing.T) {
	ts := MustServer(t, nil)
	id := "0190a5c4-7a47-7cc2-9d1e-3c1f6b2a9e01"
	r := ts.Append(t, "order-7", `{"expected_version":"no_stream","events":[
		{"id":"`+id+`","type":"order.placed","data":{ "total" : 12.5, "items":[1,2] },"metadata":{"by":"alice"}},
		{"type":"order.paid","data":"cash"},
		{"type":"order.shipped","data":null,"metadata":null}]}`)
	if r.Status != http.StatusCreated {
		t.Fatal(r)
	}
	var res struct {
		Stream       string `json:"stream"`
		FirstVersion int64  `json:"first_version"`
		LastVersion  int64  `json:"last_version"`
		Events       []struct {
			ID      string `json:"id"`
			Version int64  `json:"version"`
		} `json:"events"`
		Duplicate bool `json:"duplicate"`
	}
	if err := json.Unmarshal(r.Body, &res); err != nil {
		t.Fatal(err)
	}
	if res.Stream != "order-7" || res.FirstVersion != 1 || res.LastVersion != 3 || len(res.Events) != 3 || res.Duplicate {
		t.Fatalf("append result %s", r.Body)
	}
	if res.Events[0].ID != id || res.Events[0].Version != 1 || res.Events[2].Version != 3 || res.Events[1].ID == "" {
		t.Fatalf("event ids/versions %s", r.Body)
	}
	if got, want := r.Header.Get("Location"), "/v1/streams/order-7/events?from=1"; got != want {
		t.Fatalf("Location = %q, want %q", got, want)
	}

	p := mustPage(t, ts.Do(t, "GET", "/v1/streams/order-7/events", nil))
	if p.Stream != "order-7" || !reflect.DeepEqual(versions(p.Events), []int64{1, 2, 3}) || p.Next != nil {
		t.Fatalf("page %+v", p)
	}
	e := p.Events[0]
	if e.ID != id || e.Type != "order.placed" || string(e.Data) != `{"total":12.5,"items":[1,2]}` || string(e.Metadata) != `{"by":"alice"}` {
		t.Fatalf("event 1 = %+v", e)
	}
	if p.Events[1].ID != res.Events[1].ID || string(p.Events[1].Data) != `"cash"` || p.Events[1].Metadata != nil {
		t.Fatalf("event 2 = %+v", p.Events[1])
	}
	if string(p.Events[2].Data) != "null" || p.Events[2].Metadata != nil {
		t.Fatalf("event 3 = %+v", p.Events[2])
	}
	ts0, err := time.Parse(time.RFC3339Nano, e.Time)
	if err != nil || !strings.HasSuffix(e.Time, "Z") || len(e.Time) != len("2006-01-02T15:04:05.000000Z") {
		t.Fatalf("time %q: want RFC 3339 UTC with microseconds (%v)", e.Time, err)
	}
	if d := time.Since(ts0); d < -time.Minute || d > time.Minute {
		t.Fatalf("time %v is not now", ts0)
	}

	info := ts.Do(t, "GET", "/v1/streams/order-7", nil).JSON(t)
	if info["stream"] != "order-7" || info["category"] != "order" || info["version"] != float64(3) ||
		info["latest_snapshot_version"] != nil || info["buckets"] != float64(1) {
		t.Fatalf("info %v", info)
	}
	for _, k := range []string{"created_at", "updated_at"} {
		if _, err := time.Parse(time.RFC3339, fmt.Sprint(info[k])); err != nil {
			t.Fatalf("%s = %v", k, info[k])
		}
	}

	t.Run("CompressedBodies", func(t *testing.T) {
		body := []byte(`{"expected_version":3,"events":[{"type":"order.noted","data":{"via":"gzip"}}]}`)
		r := ts.Do(t, "POST", "/v1/streams/order-7/events", gz(t, body), "Content-Type", "application/json", "Content-Encoding", "gzip")
		if r.Status != http.StatusCreated || r.JSON(t)["first_version"] != float64(4) {
			t.Fatal(r)
		}
		body = []byte(`{"expected_version":4,"events":[{"type":"order.noted","data":{"via":"zstd"}}]}`)
		r = ts.Do(t, "POST", "/v1/streams/order-7/events", zst(t, body), "Content-Type", "application/json", "Content-Encoding", "zstd")
		if r.Status != http.StatusCreated || r.JSON(t)["first_version"] != float64(5) {
			t.Fatal(r)
		}
	})

	t.Run("PagingForward", func(t *testing.T) {
		ts.MustAppend(t, "page-1", 7)
		var got []int64
		path := "/v1/streams/page-1/events?limit=3"
		for pages := 0; ; pages++ {
			if pages > 5 {
				t.Fatal("paging does not end")
			}
			p := mustPage(t, ts.Do(t, "GET", path, nil))
			if len(p.Events) > 3 {
				t.Fatalf("page of %d events, limit 3", len(p.Events))
			}
			got = append(got, versions(p.Events)...)
			if p.Next == nil {
				break
			}
			path = fmt.Sprintf("/v1/streams/page-1/events?limit=3&from=%d", *p.Next)
		}
		if want := []int64{1, 2, 3, 4, 5, 6, 7}; !reflect.DeepEqual(got, want) {
			t.Fatalf("versions %v, want %v", got, want)
		}
	})
	t.Run("PagingBackward", func(t *testing.T) {
		var got []int64
		path := "/v1/streams/page-1/events?limit=3&direction=backward"
		for pages := 0; ; pages++ {
			if pages > 5 {
				t.Fatal("paging does not end")
			}
			p := mustPage(t, ts.Do(t, "GET", path, nil))
			got = append(got, versions(p.Events)...)
			if p.Next == nil {
				break
			}
			path = fmt.Sprintf("/v1/streams/page-1/events?limit=3&direction=backward&to=%d", *p.Next)
		}
		if want := []int64{7, 6, 5, 4, 3, 2, 1}; !reflect.DeepEqual(got, want) {
			t.Fatalf("versions %v, want %v", got, want)
		}
	})
	t.Run("Ranges", func(t *testing.T) {
		for q, want := range map[string][]int64{
			"from=2&to=4":                    {2, 3, 4},
			"from=6":                         {6, 7},
			"from=8":                         {},
			"from=3&to=5&direction=backward": {5, 4, 3},
			"limit=2&from=6":                 {6, 7},
		} {
			p := mustPage(t, ts.Do(t, "GET", "/v1/streams/page-1/events?"+q, nil))
			if got := versions(p.Events); !reflect.DeepEqual(got, want) {
				t.Errorf("%s: versions %v, want %v", q, got, want)
			}
			if p.Next != nil {
				t.Errorf("%s: next %d, want null", q, *p.Next)
			}
		}
	})
}

// TestMultilinePayloadReplays: data and metadata sent pretty-printed, with
// line breaks (LF and CR LF) between their tokens, are stored compacted
// (log.AppendRequest.Validate), so each event is one NDJSON line of a
// replay and of a feed read: the encoders write stored payloads unscanned.
func TestMultilinePayloadReplays(t *testing.T) {
	ts := MustServer(t, nil)
	body := "{\"expected_version\":\"any\",\"events\":[" +
		"{\"type\":\"t\",\"data\":{\n  \"a\": [1,\r\n 2],\n  \"s\": \"x\\ny\"\n},\"metadata\":{\r\n\"m\": true\r\n}}," +
		"{\"type\":\"t\",\"data\":[\n]}]}"
	if r := ts.Append(t, "multiline-1", body); r.Status != http.StatusCreated {
		t.Fatal(r)
	}
	for _, path := range []string{"/v1/streams/multiline-1/events", "/v1/feeds/category/multiline"} {
		r := ts.Do(t, "GET", path, nil, "Accept", "application/x-ndjson")
		if r.Status != http.StatusOK {
			t.Fatalf("%s: %s", path, r)
		}
		lines := strings.Split(strings.TrimSuffix(string(r.Body), "\n"), "\n")
		if len(lines) != 2 || strings.Contains(string(r.Body), "\r") {
			t.Fatalf("%s: %d lines, want 2: %q", path, len(lines), r.Body)
		}
		var ev struct {
			Data, Metadata json.RawMessage
		}
		if err := json.Unmarshal([]byte(lines[0]), &ev); err != nil {
			t.Fatalf("%s: %v: %s", path, err, lines[0])
		}
		if string(ev.Data) != `{"a":[1,2],"s":"x\ny"}` || string(ev.Metadata) != `{"m":true}` {
			t.Fatalf("%s: data %s metadata %s, want them compacted", path, ev.Data, ev.Metadata)
		}
	}
}

func TestPageSizeCap(t *testing.T) {
	ts := MustServer(t, func(c *httpapi.Config) { c.MaxPageSize = 2; c.DefaultPageSize = 2 })
	ts.MustAppend(t, "cap-1", 5)
	p := mustPage(t, ts.Do(t, "GET", "/v1/streams/cap-1/events?limit=50", nil))
	if got := versions(p.Events); !reflect.DeepEqual(got, []int64{1, 2}) || p.Next == nil || *p.Next != 3 {
		t.Fatalf("capped page: versions %v next %v", got, p.Next)
	}
	// NDJSON replay ignores the page limit.
	r := ts.Do(t, "GET", "/v1/streams/cap-1/events?limit=1", nil, "Accept", "application/x-ndjson")
	if got := strings.Count(string(r.Body), "\n"); r.Status != 200 || got != 5 {
		t.Fatalf("replay: %d lines: %s", got, r)
	}
}

func TestIdempotentRetry(t *testing.T) {
	ts := MustServer(t, nil)
	a, b := "0190a5c4-7a47-7cc2-9d1e-3c1f6b2a9e0a", "0190a5c4-7a47-7cc2-9d1e-3c1f6b2a9e0b"
	exact := `{"expected_version":0,"events":[{"id":"` + a + `","type":"t","data":{"n":1}},{"id":"` + b + `","type":"t","data":{"n":2}}]}`

	first := ts.Append(t, "idem-1", exact)
	if first.Status != http.StatusCreated || first.JSON(t)["duplicate"] != false {
		t.Fatal(first)
	}
	// The same request again (e.g. after a lost response), re-serialised
	// with other whitespace.
	retry := ts.Append(t, "idem-1", strings.ReplaceAll(exact, `{"n":`, `{ "n" : `))
	if retry.Status != http.StatusOK {
		t.Fatalf("exact retry: %s", retry)
	}
	if f, r := first.JSON(t), retry.JSON(t); f["first_version"] != r["first_version"] || f["last_version"] != r["last_version"] ||
		!reflect.DeepEqual(f["events"], r["events"]) || r["duplicate"] != true {
		t.Fatalf("retry %s differs from first %s", retry.Body, first.Body)
	}

	c := "0190a5c4-7a47-7cc2-9d1e-3c1f6b2a9e0c"
	anyBody := `{"expected_version":"any","events":[{"id":"` + c + `","type":"t","data":3}]}`
	first = ts.Append(t, "idem-1", anyBody)
	if first.Status != http.StatusCreated || first.JSON(t)["first_version"] != float64(3) {
		t.Fatal(first)
	}
	retry = ts.Append(t, "idem-1", anyBody)
	if retry.Status != http.StatusOK || retry.JSON(t)["first_version"] != float64(3) || retry.JSON(t)["duplicate"] != true {
		t.Fatalf("any retry: %s", retry)
	}
	p := mustPage(t, ts.Do(t, "GET", "/v1/streams/idem-1/events", nil))
	if got := versions(p.Events); !reflect.DeepEqual(got, []int64{1, 2, 3}) {
		t.Fatalf("stream holds versions %v, want 1..3 once each", got)
	}
	if p.Events[0].ID != a || p.Events[1].ID != b || p.Events[2].ID != c {
		t.Fatalf("ids %v", p.Events)
	}
}

// TestReplayStreams replays a 20,000-event stream (~13 MB) as NDJSON with a
// slow consumer: every event arrives once, in order, and the first line
// arrives before the store has handed over even half of the events, so the
// server is not collecting the stream before sending it.
func TestReplayStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("long stream")
	}
	const n = 20_000
	counter := &countingStore{}
	ts := MustServerWrapped(t, func(s log.Store) log.Store { counter.Store = s; return counter }, nil)
	pad := strings.Repeat("p", 600)
	for done := 0; done < n; {
		var evs []string
		for i := 0; i < testLimits.MaxEventsPerAppend && done < n; i++ {
			done++
			evs = append(evs, fmt.Sprintf(`{"type":"t","data":{"i":%d,"pad":"%s"}}`, done, pad))
		}
		// 503 unavailable says nothing was written: on a loaded machine a
		// shard may be between owners for a while; send it again.
		body := `{"events":[` + strings.Join(evs, ",") + `]}`
		r := ts.Append(t, "long-1", body)
		for tries := 0; r.Status == http.StatusServiceUnavailable && tries < 5; tries++ {
			r = ts.Append(t, "long-1", body)
		}
		if r.Status != 201 {
			t.Fatal(r)
		}
	}

	req, _ := http.NewRequest("GET", ts.URL+"/v1/streams/long-1/events", nil)
	req.Header.Set("Accept", "application/x-ndjson")
	res, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("status %d, Content-Type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	var want int64 = 1
	for sc.Scan() {
		var e struct {
			Version int64 `json:"version"`
			Data    struct {
				I int64 `json:"i"`
			} `json:"data"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %d: %v", want, err)
		}
		if e.Version != want || e.Data.I != want {
			t.Fatalf("line %d holds version %d (data %d)", want, e.Version, e.Data.I)
		}
		if want == 1 {
			if got := counter.delivered.Load(); got >= n/2 {
				t.Fatalf("first line arrived after the store had delivered %d of %d events: the replay is buffered", got, n)
			}
		}
		if want%1000 == 0 {
			time.Sleep(20 * time.Millisecond) // a slow consumer
		}
		want++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if got := want - 1; got != n {
		t.Fatalf("replayed %d events, want %d", got, n)
	}

	t.Run("DrainCutsStream", func(t *testing.T) {
		// A replay ended by shutdown is cut, never ended as if complete.
		req, _ := http.NewRequest("GET", ts.URL+"/v1/streams/long-1/events", nil)
		req.Header.Set("Accept", "application/x-ndjson")
		res, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 64<<10), 64<<10)
		if !sc.Scan() {
			t.Fatalf("no first line: %v", sc.Err())
		}
		ts.API.Drain()
		lines := 1
		for sc.Scan() {
			lines++
		}
		if sc.Err() == nil {
			t.Fatalf("stream ended cleanly after %d of %d lines", lines, n)
		}
		if lines >= n {
			t.Fatalf("all %d lines arrived despite the drain", lines)
		}
	})
}

// appendAfterRead appends one event to the stream of the first read, once
// that read has returned: an append that lands between a read and
// anything the server might do after it.
type appendAfterRead struct {
	log.Store
	once sync.Once
	errs chan error // the append's outcome
}

func (a *appendAfterRead) ReadStream(ctx context.Context, r log.ReadRange, fn func(*log.RecordedEvent) error) error {
	err := a.Store.ReadStream(ctx, r, fn)
	a.once.Do(func() {
		_, aerr := a.Store.Append(ctx, log.AppendRequest{Stream: r.Stream, Expected: log.Any,
			Events: []log.ProposedEvent{{ID: uuid.New(), Type: "t", Data: json.RawMessage(`1`)}}})
		a.errs <- aerr
	})
	return err
}

// TestReadMissingStreamRacingItsFirstAppend: a read of a stream that does
// not exist yet answers 404 from its one read, also when the stream's
// first append lands just after it. (The server once told an empty read
// of a missing stream from an empty range by asking the store again, and
// then answered 200 with no events: a backward read of the last event
// found none in a stream that had one.)
func TestReadMissingStreamRacingItsFirstAppend(t *testing.T) {
	for _, path := range []string{"?direction=backward&limit=1", "", "?until_time=2999-01-01T00:00:00Z"} {
		stream := "late-" + strconv.Itoa(len(path))
		late := &appendAfterRead{errs: make(chan error, 1)}
		ts := MustServerWrapped(t, func(s log.Store) log.Store { late.Store = s; return late }, nil)
		MustProblem(t, ts.Do(t, "GET", "/v1/streams/"+stream+"/events"+path, nil), http.StatusNotFound, "stream_not_found")
		if err := <-late.errs; err != nil {
			t.Fatal(err)
		}
		r := ts.Do(t, "GET", "/v1/streams/"+stream+"/events"+path, nil)
		if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"version":1`) {
			t.Fatalf("read %s after the append: %s", path, r)
		}
	}
}

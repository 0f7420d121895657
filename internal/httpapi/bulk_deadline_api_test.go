package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/eventlog/eventlog/internal/log"
)

// slowAppends delays every append (the store's answer is unchanged).
type slowAppends struct {
	log.Store
	delay time.Duration
}

func (s slowAppends) Append(ctx context.Context, req log.AppendRequest) (log.AppendResult, error) {
	time.Sleep(s.delay)
	return s.Store.Append(ctx, req)
}

// TestBulkDeadlineReportsTheLinesLeft: the bulk deadline passes while a
// line is appended, the rest of the body already received. The response
// ended there as a clean 200, as if the results were complete: the lines
// left unprocessed were told nothing. The line after the last result now
// gets a problem saying it and those after it were not processed.
func TestBulkDeadlineReportsTheLinesLeft(t *testing.T) {
	ts := MustServerWrapped(t, func(s log.Store) log.Store { return slowAppends{s, 300 * time.Millisecond} },
		func(c *httpapi.Config) { c.BulkTimeout = 500 * time.Millisecond })
	var b strings.Builder
	for i := range 5 {
		fmt.Fprintf(&b, `{"stream":"bulk-deadline","events":[{"type":"t","data":%d}]}`+"\n", i)
	}
	res := bulkResults(t, ts, []byte(b.String()))
	t.Logf("results: %v", res)
	if len(res) == 5 {
		t.Skip("every line made it before the deadline")
	}
	last := res[len(res)-1]
	if last["status"] == float64(http.StatusCreated) {
		t.Fatalf("%d results for 5 lines, the last a success: the lines after it were dropped without a word", len(res))
	}
	if last["line"] != float64(len(res)) || last["code"] == nil {
		t.Fatalf("last result %v", last)
	}
	// Every success reported is committed, and nothing else.
	ok := 0
	for _, r := range res {
		if r["status"] == float64(http.StatusCreated) {
			ok++
		}
	}
	ts.MustVersion(t, "bulk-deadline", int64(ok))
}

// TestBulkDeadlineWhileReading: the body trickles past the deadline: the
// line the deadline cuts off is answered unavailable (the deadline), not
// as a body that could not be read.
func TestBulkDeadlineWhileReading(t *testing.T) {
	ts := MustServer(t, func(c *httpapi.Config) { c.BulkTimeout = 500 * time.Millisecond })
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(`{"stream":"bulk-trickle","events":[{"type":"t","data":1}]}` + "\n"))
		time.Sleep(1500 * time.Millisecond)
		pw.Write([]byte(`{"stream":"bulk-trickle","events":[{"type":"t","data":2}]}` + "\n"))
		pw.Close()
	}()
	req, err := http.NewRequest("POST", ts.URL+"/v1/events", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	res, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	t.Logf("%d %s", res.StatusCode, b)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if res.StatusCode != http.StatusOK || len(lines) != 2 || !strings.Contains(lines[0], `"status":201`) ||
		!strings.Contains(lines[1], `"line":2`) || !strings.Contains(lines[1], `"code":"unavailable"`) {
		t.Fatalf("want line 1 appended and line 2 answered unavailable")
	}
	ts.MustVersion(t, "bulk-trickle", 1)
}

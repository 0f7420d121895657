package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/httpapi"
	"github.com/eventlog/eventlog/internal/log"
)

// TestHeadRefusesAsGet: a HEAD of a route whose GET streams answers the
// status the GET answers when the store refuses the read before its first
// byte (it answered 200: it checked the parameters only): a time before
// the stream's first event (until_time of a replay, at_time of a state
// load), a state version above the head, a feed position token that was
// altered, is another feed's, or is past the end of the logs (as one
// handed out before a keyspace was restored from an older backup). It
// reads no event. A HEAD has no body, so its problem's code is not seen:
// its Content-Length, the problem's length, is the GET's (same code and
// detail; the request ids are of one length).
func TestHeadRefusesAsGet(t *testing.T) {
	var reads *eventReads
	ts := MustServerWrapped(t, func(s log.Store) log.Store {
		reads = &eventReads{Store: s.(*shardstore.Store)}
		return reads
	}, nil)
	ts.MustAppend(t, "headref-1", 3)
	var fp feedPageJSON
	if r := ts.Do(t, "GET", "/v1/feeds/all?limit=2", nil); r.Status != http.StatusOK || json.Unmarshal(r.Body, &fp) != nil || fp.Next == "" {
		t.Fatalf("feed page: %s", r)
	}
	altered := []byte(fp.Next)
	altered[len(altered)/2] ^= 1
	var other feedPageJSON
	if r := ts.Do(t, "GET", "/v1/feeds/category/headref?limit=1", nil); r.Status != http.StatusOK || json.Unmarshal(r.Body, &other) != nil || other.Next == "" {
		t.Fatalf("category feed page: %s", r)
	}
	q := url.QueryEscape
	ndjson := "application/x-ndjson"
	type refusal struct {
		name, path, accept string
		status             int
		code               string
	}
	check := func(t *testing.T, tc refusal) {
		t.Helper()
		var h []string
		if tc.accept != "" {
			h = []string{"Accept", tc.accept}
		}
		get := ts.Do(t, "GET", tc.path, nil, h...)
		MustProblem(t, get, tc.status, tc.code)
		before := reads.n.Load()
		head := ts.Do(t, "HEAD", tc.path, nil, h...)
		MustProblemHead(t, head, tc.status)
		if cl := head.Header.Get("Content-Length"); cl != strconv.Itoa(len(get.Body)) {
			t.Errorf("HEAD %s: Content-Length %q, the GET's problem %d bytes: %s", tc.path, cl, len(get.Body), get.Body)
		}
		if n := reads.n.Load() - before; n != 0 {
			t.Errorf("HEAD %s read events or snapshots %d times", tc.path, n)
		}
	}
	before := "2000-01-01T00:00:00Z"
	for _, tc := range []refusal{
		{"ReplayUntilTimeBeforeFirstEvent", "/v1/streams/headref-1/events?until_time=" + before, ndjson, 404, httpapi.CodeStreamNotFound},
		{"ReplayUntilTimeNoStream", "/v1/streams/headref-none/events?until_time=" + before, ndjson, 404, httpapi.CodeStreamNotFound},
		{"StateAtAboveHead", "/v1/streams/headref-1/state?at=4", "", 400, log.CodeInvalidVersion},
		{"StateAtTimeBeforeFirstEvent", "/v1/streams/headref-1/state?at_time=" + before, "", 404, httpapi.CodeStreamNotFound},
		{"FeedPageAlteredToken", "/v1/feeds/all?from=" + q(string(altered)), "", 400, log.CodeInvalidPosition},
		{"FeedStreamAlteredToken", "/v1/feeds/all?from=" + q(string(altered)), ndjson, 400, log.CodeInvalidPosition},
		{"FeedOtherFeedsToken", "/v1/feeds/all?from=" + q(other.Next), "", 400, log.CodeInvalidPosition},
		{"SubscribeFeedAlteredToken", "/v1/feeds/all/subscribe?from=" + q(string(altered)), "", 400, log.CodeInvalidPosition},
	} {
		t.Run(tc.name, func(t *testing.T) { check(t, tc) })
	}

	// A position past the end of the logs: the token's rows are gone, as
	// after a restore from an older backup.
	session := cassandratest.Session(t, ts.Opts.Cassandra)
	for shard := range ts.Opts.Cassandra.Shards {
		if err := session.Query(`DELETE FROM shard_log WHERE shard = ? AND segment = 0`, shard).Exec(); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []refusal{
		{"FeedPageFuturePosition", "/v1/feeds/all?from=" + q(fp.Next), "", 400, log.CodeInvalidPosition},
		{"FeedStreamFuturePosition", "/v1/feeds/all?from=" + q(fp.Next), ndjson, 400, log.CodeInvalidPosition},
		{"SubscribeFeedFuturePosition", "/v1/feeds/all/subscribe?from=" + q(fp.Next), ndjson, 400, log.CodeInvalidPosition},
	} {
		t.Run(tc.name, func(t *testing.T) { check(t, tc) })
	}
}

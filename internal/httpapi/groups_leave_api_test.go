package httpapi_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
)

// TestGroupLeaveRepeatedAfterAFailure: a leave removes the member's row,
// then releases its partitions. When a release fails, the answer is 503
// leave_incomplete, saying the member is gone and its partitions lapse or
// are released by a repeated leave: it was 503 unavailable, "nothing was
// written", false once the row was deleted. The leave is repeated with
// the member's secret, as a leave that is answered 204 "also when the
// member had already left" may be. The repeat was 403
// invalid_member_secret (the secret check found no member row), so the
// partitions stayed held by the member that left until its lease lapsed;
// and a leave repeated after one that succeeded was 403 too.
func TestGroupLeaveRepeatedAfterAFailure(t *testing.T) {
	var fail atomic.Bool
	ts := mustGroupServer(t, func(o *shardstore.Options) {
		o.GroupFault = func(op string) error {
			if op == "group release" && fail.CompareAndSwap(true, false) {
				return gocql.ErrNoConnections
			}
			return nil
		}
	})
	ts.MustAppend(t, "lv-1", 2)
	if r, m := ts.join(t, "g", `{"feed":"category/lv","member":"a"}`); r.Status != http.StatusOK || len(m.Partitions) != 16 {
		t.Fatalf("join: %s", r)
	}
	fail.Store(true)
	pr := MustProblem(t, ts.memberDo(t, "DELETE", "/v1/groups/g/members/a", nil), 503, "leave_incomplete")
	if d, _ := pr["detail"].(string); strings.Contains(d, "nothing was written") || !strings.Contains(d, "has left") ||
		!strings.Contains(d, "repeating the leave") {
		t.Errorf("detail %q", d)
	}
	if r := ts.memberDo(t, "DELETE", "/v1/groups/g/members/a", nil); r.Status != http.StatusNoContent {
		t.Fatalf("the leave repeated: %s, want 204", r)
	}
	for _, part := range ts.describe(t, "g").Partitions {
		if part.Owner != "" {
			t.Fatalf("partition %d still owned by %q after the leave was repeated", part.Partition, part.Owner)
		}
	}
	if r := ts.memberDo(t, "DELETE", "/v1/groups/g/members/a", nil); r.Status != http.StatusNoContent {
		t.Fatalf("leaving again: %s, want 204", r)
	}
}

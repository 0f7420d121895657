package httpapi_test

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
)

// TestGroupAckPartlyApplied: an acknowledgement request over several
// partitions whose store fails on one of them after the others were
// applied is 503 unavailable (504 outcome_unknown for a lost answer) with
// a detail that names the partitions applied, not "nothing was written";
// repeating it is safe and applies the rest.
func TestGroupAckPartlyApplied(t *testing.T) {
	// While fail is set, every "group ack" but the first is answered
	// *fail: one partition is applied, the others fail.
	var (
		fail  atomic.Pointer[error]
		calls atomic.Int32
	)
	ts := mustGroupServer(t, func(o *shardstore.Options) {
		o.GroupFault = func(op string) error {
			if err := fail.Load(); op == "group ack" && err != nil && calls.Add(1) > 1 {
				return *err
			}
			return nil
		}
	})
	if r, m := ts.join(t, "g", `{"feed":"category/pa","member":"a"}`); r.Status != http.StatusOK || len(m.Partitions) != 16 {
		t.Fatalf("join: %s", r)
	}
	for _, c := range []struct {
		name   string
		err    error
		status int
		code   string
		others string
	}{
		{"Unavailable", gocql.ErrNoConnections, 503, "unavailable", "the others were not"},
		{"OutcomeUnknown", gocql.ErrTimeoutNoResponse, 504, "outcome_unknown", "the others may or may not have been"},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Events on several partitions: a partition at its
			// checkpoint already is never written.
			for i := range 8 {
				ts.MustAppend(t, fmt.Sprintf("pa-%s%d", c.name, i), 1)
			}
			r := ts.memberDo(t, "GET", "/v1/groups/g/members/a/events?limit=1000", nil)
			var p groupPageResp
			mustDecode(t, r, &p)
			if len(p.Partitions) != 16 || len(p.Events) == 0 {
				t.Fatalf("read: %s", r)
			}
			calls.Store(0)
			fail.Store(&c.err)
			r = ts.ackAll(t, "g", "a", p)
			fail.Store(nil)
			pr := MustProblem(t, r, c.status, c.code)
			detail, _ := pr["detail"].(string)
			if strings.Contains(detail, "nothing was written") || !strings.Contains(detail, "the acknowledgements of partitions [") ||
				!strings.Contains(detail, c.others) {
				t.Errorf("detail %q", detail)
			}
			if r := ts.ackAll(t, "g", "a", p); r.Status != http.StatusOK {
				t.Fatalf("the acknowledgement repeated: %s", r)
			}
			if g := ts.describe(t, "g"); g.Lag != 0 {
				t.Fatalf("lag %d after the repeated acknowledgement, want 0", g.Lag)
			}
		})
	}
}

// TestGroupAckPartlyAppliedWithLeaseLost: an acknowledgement request with
// partitions applied, one not held and the others failing on an outage
// is 503 unavailable (the store's error matches lease lost as well, but
// the status is the outage's) whose detail names the applied partitions
// (a partition already at its position among them) and the lost one.
func TestGroupAckPartlyAppliedWithLeaseLost(t *testing.T) {
	var (
		fail  atomic.Bool
		calls atomic.Int32
	)
	ts := mustGroupServer(t, func(o *shardstore.Options) {
		o.GroupFault = func(op string) error {
			if op == "group ack" && fail.Load() && calls.Add(1) > 1 {
				return gocql.ErrNoConnections
			}
			return nil
		}
	})
	if r, m := ts.join(t, "g", `{"feed":"category/pl","member":"a"}`); r.Status != http.StatusOK || len(m.Partitions) != 16 {
		t.Fatalf("join: %s", r)
	}
	for i := range 8 {
		ts.MustAppend(t, fmt.Sprintf("pl-%d", i), 1)
	}
	r := ts.memberDo(t, "GET", "/v1/groups/g/members/a/events?limit=1000", nil)
	var p groupPageResp
	mustDecode(t, r, &p)
	if len(p.Partitions) != 16 || len(p.Events) == 0 {
		t.Fatalf("read: %s", r)
	}
	// One partition without events, acknowledged under an epoch it never
	// had: lost.
	busy := map[int]bool{}
	for _, e := range p.Events {
		busy[e.Partition] = true
	}
	lost := -1
	var acks []string
	for _, pr := range p.Partitions {
		if !busy[pr.Partition] && lost < 0 {
			lost = pr.Partition
			acks = append(acks, fmt.Sprintf(`{"partition":%d,"epoch":%d}`, pr.Partition, pr.Epoch+1))
			continue
		}
		acks = append(acks, fmt.Sprintf(`{"partition":%d,"epoch":%d,"position":%q}`, pr.Partition, pr.Epoch, pr.Next))
	}
	if lost < 0 {
		t.Fatal("every partition has events")
	}
	fail.Store(true)
	r = ts.memberDo(t, "POST", "/v1/groups/g/members/a/ack", []byte("["+strings.Join(acks, ",")+"]"), "Content-Type", "application/json")
	fail.Store(false)
	pr := MustProblem(t, r, http.StatusServiceUnavailable, "unavailable")
	detail, _ := pr["detail"].(string)
	if !regexp.MustCompile(`^the acknowledgements of partitions \[[\d ]+\] were applied, partitions \[`+strconv.Itoa(lost)+`\] are not held`).MatchString(detail) ||
		strings.Contains(detail, "nothing was written") {
		t.Errorf("detail %q", detail)
	}
}

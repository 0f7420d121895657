package httpapi_test

import (
	"bytes"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventlog/eventlog/internal/auth"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
)

// TestGroupUnreadableLooksMissing: a key holding a group name's scope but
// not read on the feed the group follows gets the answer a missing group
// gets (404 group_not_found, the same problem) on every group route, so
// it cannot tell which of its names are taken; a name outside its group
// scopes stays 403 whether or not the group exists.
func TestGroupUnreadableLooksMissing(t *testing.T) {
	as := MustAuthServer(t, auth.Options{}, nil)
	root := as.MustToken(t, "root", 0, "admin")
	billing := as.MustToken(t, "billing", 0, "group:billing-*", "read:user*")
	r := as.As(t, root, "POST", "/v1/groups/billing-all/members", `{"feed":"all","member":"w-1"}`, "Content-Type", jsonCT)
	if r.Status != http.StatusOK {
		t.Fatalf("join: %s", r)
	}
	ack := `{"partition":0,"epoch":1,"position":"x"}`
	for _, c := range []struct{ name, method, path, body string }{
		{"Describe", "GET", "/v1/groups/%s", ""},
		{"Read", "GET", "/v1/groups/%s/members/w-1/events", ""},
		{"Ack", "POST", "/v1/groups/%s/members/w-1/ack", ack},
		{"Leave", "DELETE", "/v1/groups/%s/members/w-1", ""},
		{"Evict", "DELETE", "/v1/groups/%s/members/w-1?evict=true", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var problems []map[string]any
			for _, group := range []string{"billing-all", "billing-none"} {
				path := fmt.Sprintf(c.path, group)
				p := MustProblem(t, as.As(t, billing, c.method, path, c.body, "Content-Type", jsonCT), http.StatusNotFound, "group_not_found")
				delete(p, "request_id")
				problems = append(problems, p)
			}
			if a, b := problems[0], problems[1]; a["detail"] != b["detail"] || len(a) != len(b) {
				t.Fatalf("unreadable %v, missing %v", a, b)
			}
			for _, group := range []string{"other-all", "other-none"} {
				MustProblem(t, as.As(t, billing, c.method, fmt.Sprintf(c.path, group), c.body, "Content-Type", jsonCT), http.StatusForbidden, "forbidden")
			}
		})
	}
	// Nothing of the group moved: its member is still there.
	r = as.As(t, root, "GET", "/v1/groups/billing-all", "")
	if r.Status != http.StatusOK || !bytes.Contains(r.Body, []byte(`"member":"w-1"`)) {
		t.Fatalf("after the refused requests: %s", r)
	}
}

// TestGroupDeleteUnreadableLooksMissing: deleting a group is refused to a
// key that may not read the group's feed, with the answer a missing group
// gets (404 group_not_found), as every other group route answers it: a key
// holding only the name's scope can neither tell which of its names are
// taken by groups on feeds it cannot read, nor delete their checkpoints.
func TestGroupDeleteUnreadableLooksMissing(t *testing.T) {
	as := MustAuthServer(t, auth.Options{}, nil)
	root := as.MustToken(t, "root", 0, "admin")
	billing := as.MustToken(t, "billing", 0, "group:billing-*", "read:user*")
	if r := as.As(t, root, "POST", "/v1/groups/billing-all/members", `{"feed":"all","member":"w-1"}`, "Content-Type", jsonCT); r.Status != http.StatusOK {
		t.Fatalf("join: %s", r)
	}
	var problems []map[string]any
	for _, group := range []string{"billing-all", "billing-none"} {
		p := MustProblem(t, as.As(t, billing, "DELETE", "/v1/groups/"+group, ""), http.StatusNotFound, "group_not_found")
		delete(p, "request_id")
		problems = append(problems, p)
	}
	if a, b := problems[0], problems[1]; a["detail"] != b["detail"] || len(a) != len(b) {
		t.Fatalf("unreadable %v, missing %v", a, b)
	}
	MustProblem(t, as.As(t, billing, "DELETE", "/v1/groups/other-all", ""), http.StatusForbidden, "forbidden")
	// The group is still there, with its member.
	r := as.As(t, root, "GET", "/v1/groups/billing-all", "")
	if r.Status != http.StatusOK || !bytes.Contains(r.Body, []byte(`"member":"w-1"`)) {
		t.Fatalf("after the refused delete: %s", r)
	}
	// A key that may read the feed deletes it.
	ops := as.MustToken(t, "ops", 0, "group:billing-*", "read:*")
	if r := as.As(t, ops, "DELETE", "/v1/groups/billing-all", ""); r.Status != http.StatusNoContent {
		t.Fatalf("delete with read on the feed: %s", r)
	}
}

// TestGroupDeleteRepeatedByAScopedKey: a delete that failed after the
// group row went is finished by repeating it with the same key, one
// holding the group's scope and read on its feed, as an admin's is: the
// feed check found no group row and answered 404 group_not_found, so the
// member and lease rows stayed and the next group of the name went on
// from the old checkpoints.
func TestGroupDeleteRepeatedByAScopedKey(t *testing.T) {
	var fail atomic.Bool
	reg := prometheus.NewRegistry()
	store, opts := shardstoretest.NewStore(t, func(so *shardstore.Options) {
		so.Cassandra.Limits = testLimits
		so.Cassandra.Registerer = reg
		so.GroupFault = func(op string) error {
			if op == "delete group member" && fail.CompareAndSwap(true, false) {
				return gocql.ErrTimeoutNoResponse
			}
			return nil
		}
	})
	as := startAuth(t, store, opts, reg, auth.Options{}, nil, nil)
	root := as.MustToken(t, "root", 0, "admin")
	billing := as.MustToken(t, "billing", 0, "group:billing-*", "read:*")
	if r := as.As(t, root, "POST", "/v1/groups/billing-all/members", `{"feed":"all","member":"w-1"}`, "Content-Type", jsonCT); r.Status != http.StatusOK {
		t.Fatalf("join: %s", r)
	}
	fail.Store(true)
	if r := as.As(t, billing, "DELETE", "/v1/groups/billing-all", ""); r.Status < 500 {
		t.Fatalf("the delete that fails part way: %s, want a 5xx", r)
	}
	// Repeated through another instance, which has no group row cached
	// (this one's cache still names the feed for a few seconds).
	other := as.AuthInstance(t, auth.Options{})
	if r := other.As(t, billing, "DELETE", "/v1/groups/billing-all", ""); r.Status != http.StatusNoContent {
		t.Fatalf("the delete repeated: %s, want 204", r)
	}
	MustProblem(t, other.As(t, billing, "DELETE", "/v1/groups/billing-all", ""), http.StatusNotFound, "group_not_found")
	// The member's row went with the rest: a new group of the name takes
	// its id without the old member's secret.
	if r := as.As(t, root, "POST", "/v1/groups/billing-all/members", `{"feed":"all","member":"w-1"}`, "Content-Type", jsonCT); r.Status != http.StatusOK {
		t.Fatalf("join after the delete: %s", r)
	}
}

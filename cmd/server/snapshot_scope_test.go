package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
)

// TestSnapshotScopeThroughAnyInstance: a key with append and snapshot
// scopes and no read (README, "a service writing orders") puts snapshots
// through either instance. A snapshot's version is checked against the
// stream's head, which the owner of its shard first writes (the flush);
// through the instance that does not own it that flush carried the
// client's token to the owner, which required read on the stream: the
// snapshot was answered 503 unavailable, on one instance and not the
// other, for a key whose scopes allow it.
func TestSnapshotScopeThroughAnyInstance(t *testing.T) {
	o := cassandratest.NewKeyspace(t, nil)
	code, out, errOut := keysCmd(t, o.Keyspace, o.Hosts, "create", "--name=w", "--scope=append:order-*", "--scope=snapshot:order-*")
	if code != 0 {
		t.Fatalf("keys create: %s", errOut)
	}
	token := strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
	a := MustRunMain(t, o, "--auth=required")
	b := MustRunMain(t, o, "--auth=required")
	do := func(method, base, path, body string) (int, string) {
		return jsonRequest(t, method, "http://"+base+path, body, token)
	}
	for i := range 8 {
		stream := fmt.Sprintf("order-%d", i)
		if status, body := do("POST", a.Addr(), "/v1/streams/"+stream+"/events", `{"events":[{"type":"t","data":1}]}`); status != http.StatusCreated {
			t.Fatalf("append %s: %d %s", stream, status, body)
		}
		for _, m := range []*Main{a, b} {
			if status, body := do("PUT", m.Addr(), "/v1/streams/"+stream+"/snapshots/1", `{"n":1}`); status != http.StatusCreated {
				t.Fatalf("snapshot of %s through %s (owner of shards %v): %d %s", stream, m.Addr(), m.store.Owned(), status, body)
			}
		}
	}
}

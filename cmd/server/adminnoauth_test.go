package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
)

// TestAdminKeysRefusedWithoutAuth: on a server started without
// authentication (--auth=off, loopback only) anyone who reaches it could
// create API keys over HTTP, which become valid the moment authentication
// is turned on, and list or revoke the keys made for that day. The admin
// key routes are refused there (403 authentication_disabled) and change
// nothing; keys are made with `server keys`, which talks to Cassandra.
func TestAdminKeysRefusedWithoutAuth(t *testing.T) {
	o := cassandratest.NewKeyspace(t, nil)
	if code, _, errOut := keysCmd(t, o.Keyspace, o.Hosts, "create", "--name=ops", "--scope=admin"); code != 0 {
		t.Fatalf("keys create: %d %s", code, errOut)
	}
	m := MustRunMain(t, o, "--auth=off")
	base := "http://" + m.Addr()
	for _, r := range []struct{ method, path, body string }{
		{"POST", "/v1/admin/keys", `{"name":"planted","scopes":["admin"]}`},
		{"GET", "/v1/admin/keys", ""},
		{"DELETE", "/v1/admin/keys/ops", ""},
	} {
		status, body := jsonRequest(t, r.method, base+r.path, r.body, "")
		var p struct {
			Status int    `json:"status"`
			Code   string `json:"code"`
		}
		if status != http.StatusForbidden || json.Unmarshal([]byte(body), &p) != nil || p.Code != "authentication_disabled" || p.Status != status {
			t.Fatalf("%s %s without authentication: %d %s; want 403 authentication_disabled", r.method, r.path, status, body)
		}
	}
	code, out, errOut := keysCmd(t, o.Keyspace, o.Hosts, "list")
	if code != 0 {
		t.Fatalf("keys list: %d %s", code, errOut)
	}
	if strings.Contains(out, "planted") || strings.Contains(out, "revoked") || !strings.Contains(out, "ops") {
		t.Fatalf("the refused requests changed the keys:\n%s", out)
	}
}

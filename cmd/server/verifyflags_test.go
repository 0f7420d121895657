package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
)

// TestVerifyFlagsEnv: server verify's own flags fall back to
// EVENTLOG_VERIFY_<FLAG>, as serve's fall back to theirs, and a flag
// given wins; a bad value is refused naming its variable (exit 2, before
// any connection); --help names each variable.
func TestVerifyFlagsEnv(t *testing.T) {
	vars := map[string]string{
		"EVENTLOG_VERIFY_STREAMS":     "true",
		"EVENTLOG_VERIFY_SNAPSHOTS":   "true",
		"EVENTLOG_VERIFY_CONCURRENCY": "7",
		"EVENTLOG_VERIFY_RATE":        "250",
		"EVENTLOG_VERIFY_FORMAT":      "json",
		"EVENTLOG_VERIFY_REPAIR":      "true",
	}
	t.Run("OK", func(t *testing.T) {
		va, err := parseVerify(NewMain(), nil, env(vars), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		o := va.opts
		if !o.Streams || !o.Snapshots || o.Concurrency != 7 || o.Rate != 250 || va.format != "json" || !va.repair {
			t.Fatalf("got %+v, format %q, repair %v; want every variable's value", o, va.format, va.repair)
		}
	})
	t.Run("FlagWins", func(t *testing.T) {
		va, err := parseVerify(NewMain(), []string{"--rate=10", "--format=text", "--concurrency=2"}, env(vars), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if va.opts.Rate != 10 || va.format != "text" || va.opts.Concurrency != 2 {
			t.Fatalf("rate %v, format %q, concurrency %d; want the flags' 10, text, 2", va.opts.Rate, va.format, va.opts.Concurrency)
		}
	})
	// Refused before connecting: the hosts are a closed port.
	for _, c := range []struct {
		name string
		vars map[string]string
		want string
	}{
		{"BadFormat", map[string]string{"EVENTLOG_VERIFY_FORMAT": "xml"}, `--format must be text or json, not "xml"`},
		{"RepairAlone", map[string]string{"EVENTLOG_VERIFY_REPAIR": "true"}, "--repair needs --streams"},
		{"BadRate", map[string]string{"EVENTLOG_VERIFY_RATE": "fast"}, `EVENTLOG_VERIFY_RATE="fast"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(context.Background(), func() {}, []string{"verify", "--cassandra-hosts=127.0.0.1:1", "--log-format=text"}, env(c.vars), &out, &errOut)
			if code != 2 || !strings.Contains(errOut.String(), c.want) {
				t.Fatalf("exit %d, %q; want 2 and %q", code, errOut.String(), c.want)
			}
		})
	}
	t.Run("Help", func(t *testing.T) {
		var out bytes.Buffer
		if code := run(context.Background(), func() {}, []string{"verify", "--help"}, env(nil), io.Discard, &out); code != 0 {
			t.Fatalf("exit %d", code)
		}
		for name := range vars {
			if !strings.Contains(out.String(), "(env "+name+")") {
				t.Errorf("help lacks %s", name)
			}
		}
		if strings.Contains(out.String(), "EVENTLOG_RATE)") || strings.Contains(out.String(), "EVENTLOG_REPAIR)") {
			t.Errorf("help names a verify flag's variable without VERIFY_")
		}
	})
}

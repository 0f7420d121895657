package main

import (
	"os"
	"testing"
)

func TestEventVersion(t *testing.T) {
	line := []byte(`{"id":"0190a1b2-0000-7000-8000-000000000001","type":"UserCreated","version":1234,"time":"2026-11-22T10:47:30.368000Z","data":{"version":7}}`)
	if v, ok := eventVersion(line); !ok || v != 1234 {
		t.Fatalf("got %d %v, want 1234", v, ok)
	}
	if _, ok := eventVersion([]byte(`{"id":"x"}`)); ok {
		t.Fatal("found a version in an event without one")
	}
}

func TestPageNext(t *testing.T) {
	for _, c := range []struct {
		body string
		want int64
		ok   bool
	}{
		{`{"stream":"s","events":[{"id":"a"}],"next":1001}` + "\n", 1001, true},
		{`{"stream":"s","events":[],"next":null}` + "\n", 0, true},
		{`{"stream":"s","events":[]`, 0, false},
		{`{"stream":"s","events":[],"next":-3}`, 0, false},
	} {
		got, ok := pageNext([]byte(c.body))
		if got != c.want || ok != c.ok {
			t.Errorf("pageNext(%s) = %d %v, want %d %v", c.body, got, ok, c.want, c.ok)
		}
	}
}

func TestBuildAppendSize(t *testing.T) {
	for _, size := range eventSizes {
		n := buildAppendSize(size)
		if n < 1 || n > 1000 {
			t.Fatalf("size %d: %d events per append", size, n)
		}
		// Under the server's 4 MiB body limit with ids and framing.
		if body := n * (size*11/10 + 100); body > 4<<20 {
			t.Fatalf("size %d: %d-event appends are about %d bytes", size, n, body)
		}
	}
}

func TestCPUTimeOfSelf(t *testing.T) {
	if _, err := cpuTime(1); err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	for i := 0; i < 1e6; i++ {
		_ = i * i
	}
	if d, err := cpuTime(osGetpid()); err != nil || d < 0 {
		t.Fatalf("cpuTime(self) = %v, %v", d, err)
	}
	if rssBytes(osGetpid(), "VmRSS") <= 0 {
		t.Fatal("no VmRSS for self")
	}
}

func osGetpid() int { return os.Getpid() }

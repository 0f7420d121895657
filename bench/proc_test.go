package main

import (
	"net"
	"os"
	"testing"
)

// findListener tells nodes on other loopback addresses apart: several
// Cassandra nodes on one host all listen on port 9042.
func TestFindListenerByAddress(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.7:0")
	if err != nil {
		t.Skip("no 127.0.0.7 here:", err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	if got := findListener(net.ParseIP("127.0.0.7"), port); got != os.Getpid() {
		t.Errorf("findListener(127.0.0.7, %d) = %d, want this process %d", port, got, os.Getpid())
	}
	if got := findListener(net.ParseIP("127.0.0.8"), port); got != 0 {
		t.Errorf("findListener(127.0.0.8, %d) = %d, want 0: nothing listens there", port, got)
	}
	if got := findListener(nil, port); got != os.Getpid() {
		t.Errorf("findListener(any, %d) = %d, want %d", port, got, os.Getpid())
	}
}

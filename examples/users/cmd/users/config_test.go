package main

import (
	"io"
	"slices"
	"testing"
	"time"
)

func TestConfig(t *testing.T) {
	t.Run("Defaults", func(t *testing.T) {
		c := DefaultConfig()
		if err := c.ParseFlags("users", nil, io.Discard); err != nil {
			t.Fatal(err)
		}
		if c.Listen != "127.0.0.1:8090" || c.EventlogURL != "http://127.0.0.1:8080" || c.Keyspace != "users_example" || c.SnapshotEvery != 5 {
			t.Fatalf("%+v", c)
		}
	})
	t.Run("Flags", func(t *testing.T) {
		c := DefaultConfig()
		err := c.ParseFlags("users", []string{"--cassandra-hosts", "10.0.0.1,10.0.0.2", "--snapshot-every", "10", "--command-timeout", "3s"}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(c.CassandraHosts, []string{"10.0.0.1", "10.0.0.2"}) || c.SnapshotEvery != 10 || c.CommandTimeout != 3*time.Second {
			t.Fatalf("%+v", c)
		}
	})
	for _, args := range [][]string{{"--batch", "0"}, {"--group", ""}, {"--command-timeout", "0s"}, {"extra"}} {
		t.Run("Invalid", func(t *testing.T) {
			c := DefaultConfig()
			if err := c.ParseFlags("users", args, io.Discard); err == nil {
				t.Fatalf("%v accepted", args)
			}
		})
	}
}

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/eventlog/eventlog/client"
	"github.com/eventlog/eventlog/examples/users/commands"
	"github.com/eventlog/eventlog/examples/users/readmodel"
)

// Config is the example's configuration; every field has a flag.
type Config struct {
	Listen         string        // --listen: the example's HTTP API
	EventlogURL    string        // --eventlog: the eventlog server
	CassandraHosts []string      // --cassandra-hosts: for the read model
	Keyspace       string        // --keyspace: the read model's own keyspace
	SnapshotEvery  int64         // --snapshot-every: events between snapshots
	CommandTimeout time.Duration // --command-timeout: one command, all attempts
	Group          string        // --group: the projection's consumer group
	Member         string        // --member: this instance's member id ("": generated)
	Batch          int           // --batch: events per feed read
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	var rm readmodel.Options
	rm.EnsureDefaults()
	var co commands.Options
	co.EnsureDefaults()
	return Config{
		Listen:         "127.0.0.1:8090",
		EventlogURL:    client.DefaultBaseURL,
		CassandraHosts: rm.Hosts,
		Keyspace:       rm.Keyspace,
		SnapshotEvery:  co.SnapshotEvery,
		CommandTimeout: 10 * time.Second,
		Group:          "users-read-model",
		Batch:          100,
	}
}

// ParseFlags sets c from args.
func (c *Config) ParseFlags(name string, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Listen, "listen", c.Listen, "address of the example's HTTP API")
	fs.StringVar(&c.EventlogURL, "eventlog", c.EventlogURL, "base URL of the eventlog server")
	hosts := fs.String("cassandra-hosts", strings.Join(c.CassandraHosts, ","), "comma-separated Cassandra contact points of the read model")
	fs.StringVar(&c.Keyspace, "keyspace", c.Keyspace, "the read model's keyspace (created if missing)")
	fs.Int64Var(&c.SnapshotEvery, "snapshot-every", c.SnapshotEvery, "store a user's snapshot every this many events")
	fs.DurationVar(&c.CommandTimeout, "command-timeout", c.CommandTimeout, "time limit of one command, retries included")
	fs.StringVar(&c.Group, "group", c.Group, "consumer group of the projection")
	fs.StringVar(&c.Member, "member", c.Member, "member id in the group (default: generated)")
	fs.IntVar(&c.Batch, "batch", c.Batch, "events per feed read")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	c.CassandraHosts = strings.Split(*hosts, ",")
	return c.Validate()
}

// Validate reports the first invalid field. The packages that take a
// field validate it further when Run hands it over.
func (c *Config) Validate() error {
	switch {
	case c.CommandTimeout <= 0:
		return errors.New("--command-timeout must be positive")
	case c.Group == "":
		return errors.New("--group must not be empty")
	case c.Batch < 1:
		return errors.New("--batch must be at least 1")
	}
	return nil
}

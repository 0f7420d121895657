package cassandra

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/schema"
)

func TestSchemaFileIsTheSumOfMigrations(t *testing.T) {
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, m := range ms {
		all = append(all, m.statements...)
	}
	if got := splitCQL(schema.Current); !slices.Equal(got, all) {
		t.Fatalf("schema/schema.cql differs from schema/migrations:\n%s\n---\n%s", strings.Join(got, "\n;\n"), strings.Join(all, "\n;\n"))
	}
	if LatestSchemaVersion() != len(ms) || len(ms) == 0 {
		t.Fatalf("latest version %d of %d migrations", LatestSchemaVersion(), len(ms))
	}
}

func TestSplitCQL(t *testing.T) {
	got := splitCQL("-- c\nCREATE TABLE a (x int PRIMARY KEY)\n;\n\n-- d\nCREATE TABLE b (\n y int PRIMARY KEY\n)\n")
	want := []string{"CREATE TABLE a (x int PRIMARY KEY)", "CREATE TABLE b (\n y int PRIMARY KEY\n)"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q", got)
	}
	if got := qualify("CREATE TABLE IF NOT EXISTS events (", "ks"); got != "CREATE TABLE IF NOT EXISTS ks.events (" {
		t.Fatalf("qualify: %q", got)
	}
}

func TestReplicationCQL(t *testing.T) {
	for in, want := range map[string]string{
		"SimpleStrategy:1":                      "{'class': 'SimpleStrategy', 'replication_factor': 1}",
		"NetworkTopologyStrategy:dc1=3,dc2=2":   "{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 2}",
		"NetworkTopologyStrategy:datacenter1=3": "{'class': 'NetworkTopologyStrategy', 'datacenter1': 3}",
	} {
		if got, err := replicationCQL(in); err != nil || got != want {
			t.Errorf("%s: %q %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "SimpleStrategy", "SimpleStrategy:x", "SimpleStrategy:1}; DROP", "NetworkTopologyStrategy:dc'1=3", "Other:1"} {
		if _, err := replicationCQL(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	ok := DefaultOptions()
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Options){
		"Keyspace":      func(o *Options) { o.Keyspace = "Bad-Name" },
		"Consistency":   func(o *Options) { o.Consistency = "SERIAL" },
		"SubQuorum":     func(o *Options) { o.Consistency = "ONE" },
		"LocalOne":      func(o *Options) { o.Consistency = "LOCAL_ONE" },
		"TooManyEvents": func(o *Options) { o.Limits.MaxEventsPerAppend = 20_000; o.BucketMaxEvents = 100_000 },
		"Serial":        func(o *Options) { o.SerialConsistency = "QUORUM" },
		"Width":         func(o *Options) { o.BucketWidth = time.Millisecond },
		"CapBelowBatch": func(o *Options) { o.BucketMaxEvents = 10 },
		"CapTooLarge":   func(o *Options) { o.BucketMaxEvents = 5_000_000 },
		"Window":        func(o *Options) { o.IdempotencyWindow = time.Second },
	} {
		o := DefaultOptions()
		mod(&o)
		if o.Validate() == nil {
			t.Errorf("%s: invalid options accepted", name)
		}
	}
}

func TestMultiDCRefusesLocalLevels(t *testing.T) {
	two := map[string]string{"class": "org.apache.cassandra.locator.NetworkTopologyStrategy", "dc1": "3", "dc2": "3"}
	one := map[string]string{"class": "org.apache.cassandra.locator.NetworkTopologyStrategy", "dc1": "3"}
	simple := map[string]string{"class": "org.apache.cassandra.locator.SimpleStrategy", "replication_factor": "3"}
	for _, c := range []struct {
		name        string
		repl        map[string]string
		cons, ser   string
		wantRefused bool
	}{
		{"TwoDCsLocal", two, "LOCAL_QUORUM", "LOCAL_SERIAL", true},
		{"TwoDCsLocalSerialOnly", two, "QUORUM", "LOCAL_SERIAL", true},
		{"TwoDCsGlobal", two, "QUORUM", "SERIAL", false},
		{"TwoDCsEachQuorum", two, "EACH_QUORUM", "SERIAL", false},
		{"OneDCLocal", one, "LOCAL_QUORUM", "LOCAL_SERIAL", false},
		{"SimpleLocal", simple, "LOCAL_QUORUM", "LOCAL_SERIAL", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := DefaultOptions()
			o.Consistency, o.SerialConsistency = c.cons, c.ser
			if err := multiDCError(o, c.repl); (err != nil) != c.wantRefused {
				t.Fatalf("refused = %v, want %v", err, c.wantRefused)
			}
		})
	}
}

func TestPaxosVariantRefusal(t *testing.T) {
	for v, refused := range map[string]bool{
		"v2": false,
		"v1": true, // Unavailable/Overloaded after a quorum accepted (errors.go)
		"":   true, // no such setting: Cassandra before 4.1
		"v1_without_linearizable_reads_or_rejected_writes": true,
		"v2_without_linearizable_reads":                    true,
		"V2":                                               true,
	} {
		err := paxosVariantError(v)
		if (err != nil) != refused {
			t.Errorf("%q: refused = %v, want %v", v, err, refused)
		}
		if err != nil && !errors.Is(err, ErrPaxosVariant) {
			t.Errorf("%q: %v, want ErrPaxosVariant", v, err)
		}
	}
}

func TestLowestNodeIsUpOrNot(t *testing.T) {
	// Every migrator must choose the same node whichever nodes its
	// driver sees up: the lowest host id of all, down ones included.
	nodes := []node{
		{id: "c1a3e6f0-0000-4000-8000-000000000003", addr: "10.0.0.3", up: true},
		{id: "0b2d6c1e-0000-4000-8000-000000000001", addr: "10.0.0.1", up: false},
		{id: "5f0e2d3c-0000-4000-8000-000000000002", addr: "10.0.0.2", up: true},
	}
	for i := range nodes {
		rotated := append(slices.Clone(nodes[i:]), nodes[:i]...)
		got, ok := lowestNode(rotated)
		if want := nodes[1]; !ok || got != want {
			t.Fatalf("rotation %d: got %+v, %v, want %+v", i, got, ok, want)
		}
	}
	if _, ok := lowestNode(nil); ok {
		t.Fatal("a node chosen from none")
	}
}

// serverError is a driver error with a code and message, as gocql's
// error frames are.
type serverError struct {
	code int
	msg  string
}

func (e serverError) Code() int       { return e.code }
func (e serverError) Message() string { return e.msg }
func (e serverError) Error() string   { return e.msg }

// TestSchemaNotAgreedUnknownCF: a coordinator that does not know a table
// another migrator has just created answers a server error naming its id
// (CI's concurrent migrations on three nodes); the read is made again
// after schema agreement, as a replica's refusal is. Other server errors
// are not.
func TestSchemaNotAgreedUnknownCF(t *testing.T) {
	unknown := fmt.Errorf("read applied migrations: %w", serverError{gocql.ErrCodeServer, "java.lang.IllegalArgumentException: Unknown CF 743d67b0-f29b-11f1-9ec5-458102bbe5a9"})
	if !schemaNotAgreed(unknown) {
		t.Error("Unknown CF not taken for a schema not yet agreed")
	}
	if schemaNotAgreed(serverError{gocql.ErrCodeServer, "java.lang.NullPointerException"}) {
		t.Error("another server error taken for a schema not yet agreed")
	}
	if schemaNotAgreed(serverError{gocql.ErrCodeInvalid, "Unknown CF in a query's text"}) {
		t.Error("an invalid query taken for a schema not yet agreed")
	}
}

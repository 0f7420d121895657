package main

// The rawreads scenario measures what one read of a stream partition costs
// Cassandra: the queries an id lookup, a head load and a short read send,
// each --n times from 16 goroutines against a keyspace's streams, with
// Cassandra's CPU taken from /proc. docs/benchmarks.md (Session 19) quotes
// it: a static row of 1,024 client ids made a lookup cost about a
// millisecond where stream_ids took about 60 µs.
//
//	go run ./bench rawreads --keyspace <ks> [--queries static,ids,first,last,row]
//	go run ./bench rawreads --keyspace <ks> --url http://127.0.0.1:8080 --server-pid <pid>
//	go run ./bench rawreads --keyspace rawreads_maps --make-maps
//	scripts/cassandra nodetool flush rawreads_maps
//	go run ./bench rawreads --keyspace rawreads_maps --queries m0,m64,m256,m1024
//
// --make-maps writes tables m0, m64, m256 and m1024: 200 partitions of
// 1,600 rows of 150 bytes each, the first N writes of a partition also
// adding an id to its static map, as the server's low_ids did; the mN
// queries read each partition's first row. It has flags of its own and
// writes no result file: it times single reads, not a load.
import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"
)

var mapSizes = []int{0, 64, 256, 1024}

// runRawReads runs the scenario with its own flags (args after its name).
func runRawReads(ctx context.Context, args []string, out, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench rawreads", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		host      = fs.String("cassandra-host", "127.0.0.1", "Cassandra contact point (loopback only)")
		keyspace  = fs.String("keyspace", "", "keyspace to read (a server's, or --make-maps's)")
		queries   = fs.String("queries", "static,ids,first,last,row", "comma-separated queries to time: static, ids, first, last, row; m0, m64, m256, m1024 (--make-maps's tables)")
		n         = fs.Int("n", 3000, "reads of each query")
		makeMaps  = fs.Bool("make-maps", false, "create and fill the mN tables in --keyspace, then exit")
		srvURL    = fs.String("url", "", "a server of --keyspace: time its short stream reads over HTTP instead")
		serverPID = fs.Int("server-pid", 0, "the server's pid, for its CPU (with --url)")
		cassPID   = fs.Int("cassandra-pid", 0, "Cassandra's pid (default: the process running CassandraDaemon)")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *keyspace == "" {
		return fmt.Errorf("--keyspace is required")
	}
	if err := loopbackHost(*host); err != nil {
		return fmt.Errorf("--cassandra-host: %w", err)
	}
	if *srvURL != "" {
		u, err := url.Parse(*srvURL)
		if err != nil {
			return fmt.Errorf("--url: %w", err)
		}
		if err := loopbackHost(u.Host); err != nil {
			return fmt.Errorf("--url: %w", err)
		}
	}
	if *cassPID == 0 {
		if *cassPID = findByCmdline("CassandraDaemon"); *cassPID == 0 {
			return fmt.Errorf("no local Cassandra process (--cassandra-pid)")
		}
	}
	c := gocql.NewCluster(*host)
	c.Consistency = gocql.LocalQuorum
	if *makeMaps {
		s, err := c.CreateSession()
		if err != nil {
			return err
		}
		defer s.Close()
		return fill(ctx, s, *keyspace, out)
	}
	c.Keyspace = *keyspace
	s, err := c.CreateSession()
	if err != nil {
		return err
	}
	defer s.Close()
	q := `SELECT DISTINCT stream FROM stream_buckets`
	if strings.HasPrefix(*queries, "m") {
		q = `SELECT DISTINCT stream, bucket FROM m0`
	}
	var streams []string
	it := s.Query(q).PageSize(5000).Iter()
	for row := map[string]any{}; it.MapScan(row); row = map[string]any{} {
		streams = append(streams, row["stream"].(string))
	}
	if err := it.Close(); err != nil || len(streams) == 0 {
		return fmt.Errorf("list streams: %d, %v", len(streams), err)
	}
	fmt.Fprintln(out, "streams", len(streams))
	if *srvURL != "" {
		cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
		for _, path := range []string{"/events?direction=backward&limit=1", "/events?from=2&limit=1"} {
			err := timed(out, path, *n, *cassPID, *serverPID, func(i int) error {
				return getJSON(ctx, cl, *srvURL, "/v1/streams/"+url.PathEscape(streams[i%len(streams)])+path, nil)
			})
			if err != nil {
				return err
			}
		}
		return nil
	}
	stmts := map[string]string{
		"static": `SELECT DISTINCT stream, bucket, low_ids_from, low_ids[?] FROM stream_events WHERE stream = ? AND bucket IN ?`,
		"ids":    `SELECT id, version, TTL(version) FROM stream_ids WHERE stream = ? AND bucket IN ? AND id IN ?`,
		"first":  `SELECT last_version FROM stream_events WHERE stream = ? AND bucket = 0 LIMIT 1`,
		"last":   `SELECT last_version FROM stream_events WHERE stream = ? AND bucket = 0 ORDER BY last_version DESC LIMIT 1`,
		"row":    `SELECT first_version FROM stream_events WHERE stream = ? AND bucket = 0 AND last_version = 1500`,
	}
	for _, size := range mapSizes {
		stmts[fmt.Sprintf("m%d", size)] = fmt.Sprintf(`SELECT last_version FROM m%d WHERE stream = ? AND bucket = 0 LIMIT 1`, size)
	}
	for _, name := range strings.Split(*queries, ",") {
		stmt, ok := stmts[name]
		if !ok {
			return fmt.Errorf("--queries: unknown query %q", name)
		}
		err := timed(out, name, *n, *cassPID, 0, func(i int) error {
			stream := streams[i%len(streams)]
			id := gocql.UUID(uuid.Must(uuid.NewV7())) // never written: a lookup of a new id
			switch name {
			case "static":
				return s.Query(stmt, id, stream, []int64{0}).WithContext(ctx).Iter().Close()
			case "ids":
				return s.Query(stmt, stream, []int64{0}, []gocql.UUID{id}).WithContext(ctx).Iter().Close()
			}
			return s.Query(stmt, stream).WithContext(ctx).Iter().Close()
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// timed runs read n times from 16 goroutines and prints the rate and the
// CPU each read cost the given processes (serverPID 0: none).
func timed(out io.Writer, name string, n int, cassPID, serverPID int, read func(i int) error) error {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		once sync.Once
		fail error
	)
	cpu := func(pid int) time.Duration {
		if pid == 0 {
			return 0
		}
		d, _ := cpuTime(pid)
		return d
	}
	c0, s0, t0 := cpu(cassPID), cpu(serverPID), time.Now()
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				if err := read(int(i)); err != nil {
					once.Do(func() { fail = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	if fail != nil {
		return fmt.Errorf("%s: %w", name, fail)
	}
	el := time.Since(t0)
	perRead := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n) }
	line := fmt.Sprintf("%-36s %7.0f reads/s  cassandra %7.1f µs/read", name, float64(n)/el.Seconds(), perRead(cpu(cassPID)-c0))
	if serverPID != 0 {
		line += fmt.Sprintf("  server %6.1f µs/read", perRead(cpu(serverPID)-s0))
	}
	fmt.Fprintln(out, line)
	return nil
}

// fill creates keyspace ks and its mN tables (see the comment at the top).
func fill(ctx context.Context, s *gocql.Session, ks string, out io.Writer) error {
	stmts := []string{`CREATE KEYSPACE IF NOT EXISTS ` + ks + ` WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`}
	for _, size := range mapSizes {
		stmts = append(stmts, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.m%d (stream text, bucket bigint, last_version bigint, record blob, low_ids map<uuid, bigint> static, PRIMARY KEY ((stream, bucket), last_version))`, ks, size))
	}
	for _, stmt := range stmts {
		if err := s.Query(stmt).WithContext(ctx).Exec(); err != nil {
			return err
		}
	}
	record := make([]byte, 150)
	var (
		once sync.Once
		fail error
	)
	for v := int64(1); v <= 1600 && fail == nil && ctx.Err() == nil; v++ {
		var wg sync.WaitGroup
		for g := 0; g < 200; g += 25 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for p := g; p < g+25; p++ {
					stream := fmt.Sprintf("st-%d", p)
					for _, size := range mapSizes {
						b := s.Batch(gocql.UnloggedBatch).WithContext(ctx)
						b.Query(fmt.Sprintf(`INSERT INTO %s.m%d (stream, bucket, last_version, record) VALUES (?, 0, ?, ?)`, ks, size), stream, v, record)
						if v <= int64(size) {
							id := gocql.UUID(uuid.Must(uuid.NewV7()))
							b.Query(fmt.Sprintf(`UPDATE %s.m%d SET low_ids = low_ids + ? WHERE stream = ? AND bucket = 0`, ks, size), map[gocql.UUID]int64{id: v}, stream)
						}
						if err := b.Exec(); err != nil {
							once.Do(func() { fail = err })
							return
						}
					}
				}
			}()
		}
		wg.Wait()
	}
	if fail != nil {
		return fail
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	fmt.Fprintf(out, "filled %s: now flush it (scripts/cassandra nodetool flush %s)\n", ks, ks)
	return nil
}

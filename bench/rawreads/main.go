// Command rawreads measures what one read of a stream partition costs
// Cassandra: the queries an id lookup, a head load and a short read send,
// each --n times from 16 goroutines against a keyspace's streams, with
// Cassandra's CPU taken from /proc. docs/benchmarks.md (Session 19) quotes
// it: a static row of 1,024 client ids made a lookup cost about a
// millisecond where stream_ids took about 60 µs.
//
//	go run ./bench/rawreads --keyspace <ks> [--queries static,ids,first,last,row]
//	go run ./bench/rawreads --keyspace <ks> --url http://127.0.0.1:8080 --server-pid <pid>
//	go run ./bench/rawreads --keyspace rawreads_maps --make-maps
//	scripts/cassandra nodetool flush rawreads_maps
//	go run ./bench/rawreads --keyspace rawreads_maps --queries m0,m64,m256,m1024
//
// --make-maps writes tables m0, m64, m256 and m1024: 200 partitions of
// 1,600 rows of 150 bytes each, the first N writes of a partition also
// adding an id to its static map, as the server's low_ids did; the mN
// queries read each partition's first row. Loopback Cassandra only.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"
)

var mapSizes = []int{0, 64, 256, 1024}

func main() {
	var (
		host      = flag.String("cassandra-host", "127.0.0.1", "Cassandra contact point (loopback only)")
		keyspace  = flag.String("keyspace", "", "keyspace to read (a server's, or --make-maps's)")
		queries   = flag.String("queries", "static,ids,first,last,row", "comma-separated queries to time")
		n         = flag.Int("n", 3000, "reads of each query")
		makeMaps  = flag.Bool("make-maps", false, "create and fill the mN tables in --keyspace, then exit")
		url       = flag.String("url", "", "a server of --keyspace: time its stream reads over HTTP instead")
		serverPID = flag.Int("server-pid", 0, "the server's pid, for its CPU (with --url)")
	)
	flag.Parse()
	if !loopback(*host) || *keyspace == "" {
		log.Fatal("rawreads: want --keyspace and a loopback --cassandra-host")
	}
	if *url != "" {
		u, err := neturl.Parse(*url)
		if err != nil || !loopback(u.Hostname()) {
			log.Fatal("rawreads: --url must be a loopback address")
		}
	}
	cassPID := cassandraPID()
	c := gocql.NewCluster(*host)
	c.Consistency = gocql.LocalQuorum
	if *makeMaps {
		s, err := c.CreateSession()
		if err != nil {
			log.Fatal(err)
		}
		fill(s, *keyspace)
		return
	}
	c.Keyspace = *keyspace
	s, err := c.CreateSession()
	if err != nil {
		log.Fatal(err)
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
		log.Fatalf("list streams: %d, %v", len(streams), err)
	}
	fmt.Println("streams", len(streams))
	if *url != "" {
		cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
		for _, path := range []string{"/events?direction=backward&limit=1", "/events?from=2&limit=1"} {
			timed(path, *n, cassPID, *serverPID, func(i int) error {
				resp, err := cl.Get(*url + "/v1/streams/" + streams[i%len(streams)] + path)
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				io.Copy(io.Discard, resp.Body)
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("%s: %s", path, resp.Status)
				}
				return nil
			})
		}
		return
	}
	stmts := map[string]string{
		"static": `SELECT DISTINCT stream, bucket, low_ids_from, low_ids[?] FROM stream_events WHERE stream = ? AND bucket IN ?`,
		"ids":    `SELECT id, version FROM stream_ids WHERE stream = ? AND bucket IN ? AND id IN ?`,
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
			log.Fatalf("unknown query %q", name)
		}
		timed(name, *n, cassPID, 0, func(i int) error {
			stream := streams[i%len(streams)]
			id := gocql.UUID(uuid.Must(uuid.NewV7())) // never written: a lookup of a new id
			switch name {
			case "static":
				return s.Query(stmt, id, stream, []int64{0}).Iter().Close()
			case "ids":
				return s.Query(stmt, stream, []int64{0}, []gocql.UUID{id}).Iter().Close()
			}
			return s.Query(stmt, stream).Iter().Close()
		})
	}
}

// timed runs read n times from 16 goroutines and prints the rate and the
// CPU each read cost the given processes.
func timed(name string, n int, cassPID, serverPID int, read func(i int) error) {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		once sync.Once
		fail error
	)
	c0, s0, t0 := cpuSeconds(cassPID), cpuSeconds(serverPID), time.Now()
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
		log.Fatalf("%s: %v", name, fail)
	}
	el := time.Since(t0)
	line := fmt.Sprintf("%-36s %7.0f reads/s  cassandra %7.1f µs/read", name, float64(n)/el.Seconds(), (cpuSeconds(cassPID)-c0)*1e6/float64(n))
	if serverPID != 0 {
		line += fmt.Sprintf("  server %6.1f µs/read", (cpuSeconds(serverPID)-s0)*1e6/float64(n))
	}
	fmt.Println(line)
}

// fill creates keyspace ks and its mN tables (see the package comment).
func fill(s *gocql.Session, ks string) {
	stmts := []string{`CREATE KEYSPACE IF NOT EXISTS ` + ks + ` WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`}
	for _, size := range mapSizes {
		stmts = append(stmts, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.m%d (stream text, bucket bigint, last_version bigint, record blob, low_ids map<uuid, bigint> static, PRIMARY KEY ((stream, bucket), last_version))`, ks, size))
	}
	for _, stmt := range stmts {
		if err := s.Query(stmt).Exec(); err != nil {
			log.Fatal(err)
		}
	}
	record := make([]byte, 150)
	for v := int64(1); v <= 1600; v++ {
		var wg sync.WaitGroup
		for g := 0; g < 200; g += 25 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for p := g; p < g+25; p++ {
					stream := fmt.Sprintf("st-%d", p)
					for _, size := range mapSizes {
						b := s.Batch(gocql.UnloggedBatch)
						b.Query(fmt.Sprintf(`INSERT INTO %s.m%d (stream, bucket, last_version, record) VALUES (?, 0, ?, ?)`, ks, size), stream, v, record)
						if v <= int64(size) {
							id := gocql.UUID(uuid.Must(uuid.NewV7()))
							b.Query(fmt.Sprintf(`UPDATE %s.m%d SET low_ids = low_ids + ? WHERE stream = ? AND bucket = 0`, ks, size), map[gocql.UUID]int64{id: v}, stream)
						}
						if err := b.Exec(); err != nil {
							log.Fatal(err)
						}
					}
				}
			}()
		}
		wg.Wait()
	}
	fmt.Printf("filled %s: now flush it (scripts/cassandra nodetool flush %s)\n", ks, ks)
}

// loopback reports whether host is a loopback address or localhost.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// cassandraPID finds the local Cassandra process.
func cassandraPID() int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		cmd, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err == nil && strings.Contains(string(cmd), "CassandraDaemon") {
			pid, _ := strconv.Atoi(filepath.Base(d))
			return pid
		}
	}
	log.Fatal("rawreads: no local Cassandra process")
	return 0
}

// cpuSeconds is the user and system CPU of pid so far (0: none).
func cpuSeconds(pid int) float64 {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which may hold spaces: utime and
	// stime are the 14th and 15th of the line.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return (u + s) / 100 // clock ticks; 100 a second on Linux
}

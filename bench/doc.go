// Command bench is eventlog's benchmark harness:
//
//	go run ./bench <scenario> [flags]
//
// Scenarios: ingest (appends through the HTTP API of a running server),
// baseline (the same rows and statements written by a raw gocql client: the
// ceiling the server is measured against), compare (ingest and baseline
// alternately, A B A B, and their ratio), replay (a long stream read back
// through NDJSON, paged JSON and raw gocql, plus state loads), subscribe
// (ingest while subscribers follow a feed: append-to-delivery latency and
// exactly-once delivery) and smoke (all of them, tiny, against an
// in-process server: the CI check that the harness works).
//
// Every run prints progress on stderr each second, then a table on stdout,
// and writes a JSON result file and PNG plots under bench/results/. Latencies
// go into HDR histograms in microseconds; an open-loop run (--rate) measures
// each append from the time it was scheduled to start, so a stalled server
// is not hidden by the client waiting for it (coordinated omission).
//
// The harness only ever talks to the loopback addresses it is given (other
// machines only with --allow-remote), and every loop it runs is bounded by
// a duration or a count.
package main

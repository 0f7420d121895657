package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// resultFormat versions the JSON result file; bump it when a field changes
// meaning, so old files are not misread.
const resultFormat = "eventlog-bench/1"

// Result is one run, as written to the JSON result file.
type Result struct {
	Format    string    `json:"format"`
	Scenario  string    `json:"scenario"`
	StartedAt time.Time `json:"started_at"`
	Args      []string  `json:"args"`
	Config    Config    `json:"config"`
	Machine   Machine   `json:"machine"`
	Phases    []Phase   `json:"phases"`
	Ratios    []Ratio   `json:"ratios,omitempty"`
	Notes     []string  `json:"notes,omitempty"`
}

// Machine is the context the numbers were measured in.
type Machine struct {
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
}

func thisMachine() Machine {
	return Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
}

// Phase is one measured stretch of a run: an ingest, a baseline round, one
// kind of replay.
type Phase struct {
	Name string `json:"name"`
	// Kind groups phases: server, baseline, read, state, build.
	Kind  string `json:"kind"`
	Round int    `json:"round,omitempty"`
	// OffsetS is when the measurement started, in seconds since the run
	// started (plots put phases on one time axis).
	OffsetS    float64            `json:"offset_s"`
	DurationS  float64            `json:"duration_s"`
	Ops        int64              `json:"ops"`
	Events     int64              `json:"events"`
	Bytes      int64              `json:"bytes"`
	EventsPerS float64            `json:"events_per_s"`
	MBPerS     float64            `json:"mb_per_s"`
	Latency    Latency            `json:"latency"`
	Errors     map[string]int64   `json:"errors,omitempty"`
	ErrorText  map[string]string  `json:"error_text,omitempty"` // the first error of each code
	Retries    map[string]int64   `json:"retries,omitempty"`
	Process    *ProcessStats      `json:"process,omitempty"`
	Extra      map[string]float64 `json:"extra,omitempty"`
	Timeline   []Second           `json:"timeline,omitempty"`
}

// Latency summarises an HDR histogram, in microseconds.
type Latency struct {
	Count  int64   `json:"count"`
	MeanUS float64 `json:"mean_us"`
	P50US  int64   `json:"p50_us"`
	P90US  int64   `json:"p90_us"`
	P99US  int64   `json:"p99_us"`
	P999US int64   `json:"p999_us"`
	MaxUS  int64   `json:"max_us"`
}

// ProcessStats is the CPU the server and Cassandra spent during a phase,
// per event, and the server's peak memory. A pid of 0 means the process
// was not found (its fields are then absent). With --spread-urls the
// server figures are of every server found here (MoreServerPIDs): CPU
// summed, RSS the largest.
type ProcessStats struct {
	ServerPID              int      `json:"server_pid,omitempty"`
	MoreServerPIDs         []int    `json:"more_server_pids,omitempty"`
	CassandraPID           int      `json:"cassandra_pid,omitempty"`
	ServerCPUUSPerEvent    *float64 `json:"server_cpu_us_per_event,omitempty"`
	CassandraCPUUSPerEvent *float64 `json:"cassandra_cpu_us_per_event,omitempty"`
	ServerPeakRSSBytes     int64    `json:"server_peak_rss_bytes,omitempty"`
	// ServerInProcess: the server ran inside the harness (smoke), so its
	// CPU includes the load generator's.
	ServerInProcess bool `json:"server_in_process,omitempty"`
}

// Second is one second of a phase, by completion time.
type Second struct {
	T      int   `json:"t"`
	Ops    int64 `json:"ops"`
	Events int64 `json:"events"`
	Bytes  int64 `json:"bytes"`
	P50US  int64 `json:"p50_us"`
	P99US  int64 `json:"p99_us"`
	MaxUS  int64 `json:"max_us"`
}

// Ratio is a quotient of two phases' throughput, e.g. server/baseline.
// Value is the median of Rounds when there are rounds.
type Ratio struct {
	Name   string    `json:"name"`
	Value  float64   `json:"value"`
	Rounds []float64 `json:"rounds,omitempty"`
	Target string    `json:"target,omitempty"`
}

// defaultOut is bench/results/<scenario>-<time>.json under the module
// root (or the working directory when that is not found).
func defaultOut(scenario string, t time.Time) string {
	dir := "bench/results"
	if root, err := moduleRoot(); err == nil {
		dir = filepath.Join(root, dir)
	}
	return filepath.Join(dir, fmt.Sprintf("%s-%s.json", scenario, t.Format("20060102-150405")))
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// writeResult writes r as indented JSON, creating the directory.
func writeResult(path string, r *Result) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// readResult reads a result file and checks its format.
func readResult(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if r.Format != resultFormat {
		return nil, fmt.Errorf("%s: format %q, want %q", path, r.Format, resultFormat)
	}
	return &r, nil
}

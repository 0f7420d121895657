package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"image/png"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/result.golden.json")

var fixedTime = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func sampleResult() *Result {
	c := defaultConfig("compare")
	srv, cas := 120.5, 800.25
	return &Result{
		Format: resultFormat, Scenario: "compare", StartedAt: fixedTime,
		Args:    []string{"--rounds", "1"},
		Config:  c,
		Machine: Machine{CPUs: 2, GoVersion: "go1.26.8", OS: "linux", Arch: "amd64"},
		Phases: []Phase{
			{Name: "ingest", Kind: "server", Round: 1, OffsetS: 10, DurationS: 10, Ops: 1000, Events: 1000, Bytes: 200_000,
				EventsPerS: 100, MBPerS: 0.02,
				Latency:   Latency{Count: 1001, MeanUS: 1500.5, P50US: 1400, P90US: 2000, P99US: 5000, P999US: 9000, MaxUS: 12000},
				Errors:    map[string]int64{"timeout": 1},
				ErrorText: map[string]string{"timeout": "context deadline exceeded"},
				Retries:   map[string]int64{"outcome_unknown": 2},
				Process:   &ProcessStats{ServerPID: 10, CassandraPID: 20, ServerCPUUSPerEvent: &srv, CassandraCPUUSPerEvent: &cas, ServerPeakRSSBytes: 50 << 20},
				Timeline:  []Second{{T: 0, Ops: 100, Events: 100, Bytes: 20_000, P50US: 1400, P99US: 5000, MaxUS: 6000}},
			},
			{Name: "baseline-full", Kind: "baseline", Round: 1, OffsetS: 21, DurationS: 10, Ops: 1250, Events: 1250, EventsPerS: 125,
				Latency: Latency{Count: 1250, P50US: 1000}},
		},
		Ratios: []Ratio{{Name: "server/baseline-full events/s", Value: 0.8, Rounds: []float64{0.8}, Target: ">= 0.8"}},
		Notes:  []string{"a note"},
	}
}

func TestResultRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "r.json")
	want := sampleResult()
	if err := writeResult(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := readResult(path)
	if err != nil {
		t.Fatal(err)
	}
	// Out is not part of the file.
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip differs:\n got %+v\nwant %+v", got, want)
	}
}

// TestResultGolden pins the file format: a change to it must be
// deliberate (bump resultFormat when a field changes meaning), then
// `go test ./bench -run Golden -update`.
func TestResultGolden(t *testing.T) {
	b, err := json.MarshalIndent(sampleResult(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	golden := filepath.Join("testdata", "result.golden.json")
	if *update {
		if err := os.WriteFile(golden, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("result JSON differs from %s (run with -update if intended):\n%s", golden, b)
	}
}

func TestReadResultRejectsOtherFormats(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"other.json": `{"format":"eventlog-bench/0","scenario":"ingest"}`,
		"bad.json":   `{"format":`,
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		if _, err := readResult(p); err == nil {
			t.Fatalf("%s: read without error", name)
		}
	}
}

func TestTableAndPlots(t *testing.T) {
	r := sampleResult()
	var out bytes.Buffer
	printTable(&out, r)
	for _, want := range []string{"ingest #1", "baseline-full #1", "timeout=1", "outcome_unknown=2", "120.5", "800.2", "ratio   server/baseline-full events/s = 0.800"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("table lacks %q:\n%s", want, out.String())
		}
	}
	dir := t.TempDir()
	files, err := writePlots(filepath.Join(dir, "r.json"), r)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "r-throughput.png"), filepath.Join(dir, "r-latency.png")}
	if !reflect.DeepEqual(files, want) {
		t.Fatalf("plots %q, want %q", files, want)
	}
	for _, f := range want {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
			t.Fatalf("plot %s (%d bytes) is not a PNG", f, len(b))
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("plot %s: %v", f, err)
		}
		// Saved at 10 × 4 inches.
		if sz := img.Bounds().Size(); sz.X == 0 || sz.X*4 != sz.Y*10 {
			t.Fatalf("plot %s is %v pixels, want 10:4", f, sz)
		}
	}
}

func TestLatencyTicks(t *testing.T) {
	var labels []string
	for _, tk := range (latencyTicks{}).Ticks(300, 25_000) {
		if tk.Label != "" {
			labels = append(labels, tk.Label)
		}
	}
	if got, want := strings.Join(labels, " "), "500µs 1ms 2ms 5ms 10ms 20ms"; got != want {
		t.Fatalf("labels %q, want %q", got, want)
	}
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// scenarioFunc returns the function that runs a scenario; it returns the
// phases and ratios, run fills in the rest of the result. (A switch, not a
// map: smoke calls the others.)
func scenarioFunc(name string) func(context.Context, *runEnv) (*Result, error) {
	switch name {
	case "ingest":
		return runIngest
	case "baseline":
		return runBaseline
	case "compare":
		return runCompare
	case "replay":
		return runReplay
	case "subscribe":
		return runSubscribe
	case "smoke":
		return runSmoke
	}
	return nil
}

// run executes one scenario and returns the exit code: 0 done, 1 failed,
// 2 bad usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	scenario := args[0]
	if scenario == "rawreads" { // single reads, not a load: flags and output of its own
		if err := runRawReads(ctx, args[1:], stdout, stderr); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			fmt.Fprintf(stderr, "bench rawreads: %v\n", err)
			return 1
		}
		return 0
	}
	c, err := parseArgs(scenario, args[1:], stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		if !knownScenario(scenario) {
			usage(stderr)
		}
		return 2
	}
	if c.CPUProfile != "" {
		f, err := os.Create(c.CPUProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(stderr, "bench: --cpuprofile: %v\n", err)
			return 2
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	e := &runEnv{cfg: &c, out: stdout, stderr: stderr, started: time.Now()}
	needServer := scenario != "baseline" && scenario != "smoke"
	e.procs = findProcs(&c, needServer)
	if scenario != "smoke" {
		describeProcs(stderr, e.procs, needServer)
	}
	res, err := scenarioFunc(scenario)(ctx, e)
	// What was measured before a failure or an interrupt is still shown
	// and kept (smoke runs its own scenarios and reports on them itself).
	if res != nil && len(res.Phases) > 0 && scenario != "smoke" {
		if ferr := finish(e, res, args, stdout, stderr); ferr != nil {
			err = errors.Join(err, ferr)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench %s: %v\n", scenario, err)
		return 1
	}
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "bench: interrupted; the result covers the part that ran")
		return 1
	}
	return 0
}

// finish completes res, prints its table and writes the result file and
// plots.
func finish(e *runEnv, res *Result, args []string, stdout, stderr io.Writer) error {
	res.Format = resultFormat
	res.Scenario = e.cfg.Scenario
	res.StartedAt = e.started.UTC()
	res.Args = args
	res.Config = *e.cfg
	res.Machine = thisMachine()
	fmt.Fprintln(stdout)
	printTable(stdout, res)
	out := e.cfg.Out
	if out == "" {
		out = defaultOut(e.cfg.Scenario, e.started)
	}
	if err := writeResult(out, res); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	fmt.Fprintf(stdout, "result  %s\n", out)
	if !e.cfg.NoPlots {
		files, err := writePlots(out, res)
		if err != nil {
			return fmt.Errorf("plots: %w", err)
		}
		for _, f := range files {
			fmt.Fprintf(stdout, "plot    %s\n", f)
		}
	}
	return nil
}

func describeProcs(w io.Writer, p procs, needServer bool) {
	say := func(what string, pid int, hint string) {
		if pid > 0 {
			fmt.Fprintf(w, "%s pid %d\n", what, pid)
		} else {
			fmt.Fprintf(w, "%s process not found: its CPU is not reported (%s)\n", what, hint)
		}
	}
	say("cassandra", p.cassandra, "--cassandra-pid")
	if needServer {
		say("server", p.server, "--server-pid")
		for _, pid := range p.more {
			fmt.Fprintf(w, "server pid %d (--spread-urls)\n", pid)
		}
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: go run ./bench <scenario> [flags]   (go run ./bench <scenario> --help lists its flags)")
	fmt.Fprintln(w, "\nscenarios:")
	for _, s := range scenarios {
		fmt.Fprintf(w, "  %-9s %s\n", s.name, s.what)
	}
	fmt.Fprintln(w, "\nSee bench/README.md.")
}

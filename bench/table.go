package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// printTable writes the run's phases, their errors and its ratios.
func printTable(w io.Writer, r *Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tevents/s\tMB/s\tp50 µs\tp90 µs\tp99 µs\tp99.9 µs\tmax µs\terrors\tsrv CPU µs/ev\tcass CPU µs/ev\tsrv peak RSS MiB\t")
	for _, p := range r.Phases {
		fmt.Fprintf(tw, "%s\t%.0f\t%.2f\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t\n",
			phaseLabel(p), p.EventsPerS, p.MBPerS, p.Latency.P50US, p.Latency.P90US, p.Latency.P99US, p.Latency.P999US, p.Latency.MaxUS,
			total(p.Errors), cpuCell(p.Process, true), cpuCell(p.Process, false), rssCell(p.Process))
	}
	tw.Flush()
	for _, p := range r.Phases {
		if len(p.Errors) > 0 {
			fmt.Fprintf(w, "errors  %s: %s\n", phaseLabel(p), counts(p.Errors))
			for _, c := range sortedKeys(p.ErrorText) {
				fmt.Fprintf(w, "        first %s: %s\n", c, p.ErrorText[c])
			}
		}
		if len(p.Retries) > 0 {
			fmt.Fprintf(w, "retries %s: %s\n", phaseLabel(p), counts(p.Retries))
		}
	}
	for _, q := range r.Ratios {
		fmt.Fprintf(w, "ratio   %s = %.3f", q.Name, q.Value)
		if len(q.Rounds) > 0 {
			parts := make([]string, len(q.Rounds))
			for i, v := range q.Rounds {
				parts[i] = fmt.Sprintf("%.3f", v)
			}
			fmt.Fprintf(w, " (median of rounds %s)", strings.Join(parts, " "))
		}
		if q.Target != "" {
			fmt.Fprintf(w, "  target %s", q.Target)
		}
		fmt.Fprintln(w)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note    %s\n", n)
	}
}

func phaseLabel(p Phase) string {
	if p.Round > 0 {
		return fmt.Sprintf("%s #%d", p.Name, p.Round)
	}
	return p.Name
}

func total(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// counts renders a count map sorted by key: "timeout=3 transport=1".
func counts(m map[string]int64) string {
	keys := sortedKeys(m)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}

func cpuCell(ps *ProcessStats, server bool) string {
	if ps == nil {
		return "-"
	}
	v := ps.CassandraCPUUSPerEvent
	if server {
		v = ps.ServerCPUUSPerEvent
	}
	if v == nil {
		return "-"
	}
	s := fmt.Sprintf("%.1f", *v)
	if server && ps.ServerInProcess {
		s += "*" // includes the harness itself
	}
	return s
}

func rssCell(ps *ProcessStats) string {
	if ps == nil || ps.ServerPeakRSSBytes == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", float64(ps.ServerPeakRSSBytes)/(1<<20))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

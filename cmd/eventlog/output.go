package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/eventlog/eventlog/client"
)

// writeValue writes one result: indented JSON (json), one line (ndjson),
// or, for a table, what table prints.
func (a *app) writeValue(v any, table func(w io.Writer)) error {
	switch a.output {
	case "json":
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "ndjson":
		return json.NewEncoder(a.stdout).Encode(v)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// eventWriter writes events as they arrive: a JSON array (json, closed by
// end), one per line (ndjson), or table rows, each flushed at once so
// tail shows events as they come.
type eventWriter struct {
	a      *app
	feed   bool // show position and stream
	n      int
	header bool
}

func (a *app) events(feed bool) *eventWriter { return &eventWriter{a: a, feed: feed} }

func (w *eventWriter) write(ev any, position, stream string, e *client.Event) error {
	out := w.a.stdout
	defer func() { w.n++ }()
	switch w.a.output {
	case "json":
		b, err := json.MarshalIndent(ev, "  ", "  ")
		if err != nil {
			return err
		}
		sep := ",\n  "
		if w.n == 0 {
			sep = "[\n  "
		}
		_, err = fmt.Fprintf(out, "%s%s", sep, b)
		return err
	case "ndjson":
		return json.NewEncoder(out).Encode(ev)
	}
	if !w.header {
		w.header = true
		if w.feed {
			fmt.Fprintln(out, "POSITION\tSTREAM\tVERSION\tTYPE\tTIME\tDATA")
		} else {
			fmt.Fprintln(out, "VERSION\tTYPE\tTIME\tDATA")
		}
	}
	row := fmt.Sprintf("%d\t%s\t%s\t%s", e.Version, e.Type, e.Time.UTC().Format(time.RFC3339Nano), clip(string(e.Data), 80))
	if w.feed {
		row = position + "\t" + stream + "\t" + row
	}
	_, err := fmt.Fprintln(out, row)
	return err
}

func (w *eventWriter) event(e client.Event) error { return w.write(e, "", e.Stream, &e) }

func (w *eventWriter) feedEvent(e client.FeedEvent) error {
	return w.write(e, e.Position, e.Stream, &e.Event)
}

// end closes the JSON array (an empty one when no event came).
func (w *eventWriter) end() error {
	if w.a.output != "json" {
		return nil
	}
	if w.n == 0 {
		_, err := fmt.Fprintln(w.a.stdout, "[]")
		return err
	}
	_, err := fmt.Fprintln(w.a.stdout, "\n]")
	return err
}

// clip shortens s to n runes for a table cell.
func clip(s string, n int) string {
	s = strings.ReplaceAll(s, "\t", " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/eventlog/eventlog/client"
)

func (a *app) appendCommand() *cobra.Command {
	var (
		typ, data, metadata, id, expected, file string
	)
	cmd := &cobra.Command{
		Use:   "append STREAM",
		Short: "Append events to a stream, atomically",
		Long: `append writes one event (--type and --data) or, without --type, the events
read from --file (default: standard input), one JSON object per line:
{"type": "...", "data": ..., "metadata": {...}, "id": "..."}. All events land
at consecutive versions, or none does.

Give event ids (--id, or "id" per line) to make a retry safe: re-sending an
append whose ids are stored writes nothing and reports "duplicate". Without
them each event gets a fresh UUIDv7, and exit code 6 (outcome unknown) means
the append may or may not have been written.

--data, --metadata: JSON; @FILE reads it from a file, - from standard input.`,
		Example: `  eventlog append user-42 --type UserCreated --data '{"name":"Ada"}' --expected no_stream
  eventlog append user-42 --type UserRenamed --data @rename.json --expected 1
  printf '%s\n' '{"type":"A","data":1}' '{"type":"B","data":2}' | eventlog append order-7`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			exp, err := parseExpected(expected)
			if err != nil {
				return err
			}
			var events []client.EventData
			if typ != "" {
				ev, err := a.eventFromFlags(typ, data, metadata, id)
				if err != nil {
					return err
				}
				events = []client.EventData{ev}
			} else {
				if data != "" || metadata != "" || id != "" {
					return fmt.Errorf("--data, --metadata and --id need --type")
				}
				if events, err = a.eventsFromLines(file); err != nil {
					return err
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, cancel := a.ctx(cmd)
			defer cancel()
			res, err := c.Append(ctx, args[0], exp, events...)
			if err != nil {
				return api(err)
			}
			return a.writeValue(res, func(w io.Writer) {
				fmt.Fprintln(w, "STREAM\tFIRST\tLAST\tDUPLICATE\tTIME")
				fmt.Fprintf(w, "%s\t%d\t%d\t%t\t%s\n", res.Stream, res.FirstVersion, res.LastVersion, res.Duplicate, formatTime(res.Time))
			})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&typ, "type", "t", "", "event type (one event from the flags)")
	f.StringVarP(&data, "data", "d", "", "event data: JSON, @FILE or - (stdin)")
	f.StringVar(&metadata, "metadata", "", "event metadata: a JSON object, @FILE or -")
	f.StringVar(&id, "id", "", "event id (a UUID): makes a retry safe")
	f.StringVarP(&expected, "expected", "e", "any", "expected version: any, no_stream, exists or a version")
	f.StringVarP(&file, "file", "f", "-", "without --type: file of events, one JSON object per line (- is stdin)")
	_ = cmd.RegisterFlagCompletionFunc("expected", cobra.FixedCompletions([]string{"any", "no_stream", "exists"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// parseExpected reads --expected.
func parseExpected(s string) (client.ExpectedVersion, error) {
	switch s {
	case "", "any":
		return client.Any, nil
	case "no_stream":
		return client.NoStream, nil
	case "exists":
		return client.Exists, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return client.Any, fmt.Errorf("--expected must be any, no_stream, exists or a version >= 0, not %q", s)
	}
	return client.Exact(n), nil
}

// eventFromFlags builds the event of --type, --data, --metadata, --id.
func (a *app) eventFromFlags(typ, data, metadata, id string) (client.EventData, error) {
	ev := client.EventData{Type: typ}
	if data == "" {
		return ev, fmt.Errorf("--type needs --data (JSON, @FILE or -)")
	}
	raw, err := a.jsonArg("--data", data)
	if err != nil {
		return ev, err
	}
	ev.Data = raw
	if metadata != "" {
		if ev.Metadata, err = a.jsonArg("--metadata", metadata); err != nil {
			return ev, err
		}
	}
	if id != "" {
		if ev.ID, err = uuid.Parse(id); err != nil {
			return ev, fmt.Errorf("--id: %w", err)
		}
	}
	return ev, nil
}

// jsonArg reads a JSON flag value: literal JSON, @FILE, or - for stdin.
func (a *app) jsonArg(name, v string) (json.RawMessage, error) {
	var b []byte
	var err error
	switch {
	case v == "-":
		b, err = io.ReadAll(a.stdin)
	case strings.HasPrefix(v, "@"):
		b, err = os.ReadFile(v[1:])
	default:
		b = []byte(v)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("%s is not valid JSON", name)
	}
	return json.RawMessage(b), nil
}

// lineEvent is one line of an append's event file.
type lineEvent struct {
	ID       uuid.UUID       `json:"id"`
	Type     string          `json:"type"`
	Data     json.RawMessage `json:"data"`
	Metadata json.RawMessage `json:"metadata"`
}

// eventsFromLines reads events, one JSON object per non-blank line.
func (a *app) eventsFromLines(file string) ([]client.EventData, error) {
	r := a.stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	var events []client.EventData
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var le lineEvent
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&le); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if le.Type == "" || len(le.Data) == 0 {
			return nil, fmt.Errorf(`line %d: an event needs "type" and "data"`, n)
		}
		ev := client.EventData{ID: le.ID, Type: le.Type, Data: le.Data}
		if len(le.Metadata) > 0 && string(le.Metadata) != "null" {
			ev.Metadata = le.Metadata
		}
		events = append(events, ev)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(events) == 0 {
		return nil, fmt.Errorf("no events given: use --type and --data, or one JSON event per line on standard input")
	}
	return events, nil
}

package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/eventlog/eventlog/client"
)

func (a *app) stateCommand() *cobra.Command {
	var (
		at     int64
		atTime string
	)
	cmd := &cobra.Command{
		Use:   "state STREAM",
		Short: "Load an aggregate: its latest snapshot and the events after it",
		Long: `state prints what loading the aggregate takes, in one request: the latest
snapshot at or below --at (default: the head) and the events after it; with
--at-time, the aggregate as it was at that moment (RFC 3339).`,
		Example: `  eventlog state user-42
  eventlog state user-42 --at 2 -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if at != 0 && atTime != "" {
				return errors.New("give --at or --at-time, not both")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, cancel := a.ctx(cmd)
			defer cancel()
			var st *client.State
			if atTime != "" {
				t, perr := time.Parse(time.RFC3339Nano, atTime)
				if perr != nil {
					return fmt.Errorf("--at-time: %w", perr)
				}
				st, err = c.StateAt(ctx, args[0], t)
			} else {
				st, err = c.State(ctx, args[0], at)
			}
			if err != nil {
				return api(err)
			}
			return a.writeValue(st, func(w io.Writer) {
				snap := "none"
				if st.Snapshot != nil {
					snap = strconv.FormatInt(st.Snapshot.Version, 10)
				}
				fmt.Fprintln(w, "STREAM\tVERSION\tSNAPSHOT\tEVENTS AFTER IT")
				fmt.Fprintf(w, "%s\t%d\t%s\t%d\n", st.Stream, st.Version, snap, len(st.Events))
				if st.Snapshot != nil {
					fmt.Fprintf(w, "\nSNAPSHOT STATE\n%s\n", clip(string(st.Snapshot.State), 200))
				}
				if len(st.Events) > 0 {
					fmt.Fprintln(w, "\nVERSION\tTYPE\tTIME\tDATA")
					for _, e := range st.Events {
						fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", e.Version, e.Type, formatTime(e.Time), clip(string(e.Data), 80))
					}
				}
			})
		},
	}
	cmd.Flags().Int64Var(&at, "at", 0, "the version to load (default: the head)")
	cmd.Flags().StringVar(&atTime, "at-time", "", "load the aggregate as it was at this moment (RFC 3339)")
	return cmd
}

func (a *app) snapshotCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Get or store an aggregate snapshot",
	}
	var maxVersion int64
	get := &cobra.Command{
		Use:     "get STREAM",
		Short:   "Print the newest snapshot at or below --max-version",
		Example: `  eventlog snapshot get user-42 -o json`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, cancel := a.ctx(cmd)
			defer cancel()
			s, err := c.LatestSnapshot(ctx, args[0], maxVersion)
			if err != nil {
				return api(err)
			}
			return a.writeValue(s, func(w io.Writer) {
				fmt.Fprintln(w, "STREAM\tVERSION\tCREATED\tSIZE\tSTORED\tCOMPRESSION")
				fmt.Fprintf(w, "%s\t%d\t%s\t%d\t%d\t%s\n", s.Stream, s.Version, formatTime(s.CreatedAt), s.Size, s.StoredSize, s.Compression)
				fmt.Fprintf(w, "\nSTATE\n%s\n", s.State)
			})
		},
	}
	get.Flags().Int64Var(&maxVersion, "max-version", 0, "newest at or below this version (0: any)")

	var state string
	put := &cobra.Command{
		Use:   "put STREAM VERSION",
		Short: "Store an aggregate state (JSON) as the snapshot at VERSION",
		Long: `put stores --state (JSON; @FILE reads a file, - standard input) as the
aggregate's state at VERSION, which must be 1..the stream's version.`,
		Example: `  eventlog snapshot put user-42 2 --state '{"name":"Ada L."}'`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := strconv.ParseInt(args[1], 10, 64)
			if err != nil || v < 1 {
				return fmt.Errorf("VERSION must be a version >= 1, not %q", args[1])
			}
			raw, err := a.jsonArg("--state", state)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, cancel := a.ctx(cmd)
			defer cancel()
			info, err := c.PutSnapshot(ctx, args[0], v, raw)
			if err != nil {
				return api(err)
			}
			return a.writeValue(info, func(w io.Writer) {
				fmt.Fprintln(w, "STREAM\tVERSION\tCREATED\tSIZE\tSTORED\tCOMPRESSION")
				fmt.Fprintf(w, "%s\t%d\t%s\t%d\t%d\t%s\n", info.Stream, info.Version, formatTime(info.CreatedAt), info.Size, info.StoredSize, info.Compression)
			})
		},
	}
	put.Flags().StringVarP(&state, "state", "s", "-", "the state: JSON, @FILE or - (stdin)")
	cmd.AddCommand(get, put)
	return cmd
}

package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/eventlog/eventlog/client"
)

func (a *app) readCommand() *cobra.Command {
	var (
		from, to  int64
		limit     int
		backward  bool
		untilTime string
	)
	cmd := &cobra.Command{
		Use:   "read STREAM",
		Short: "Read a stream's events (a range, forward or backward)",
		Long: `read prints the events of a stream in the range --from..--to (default: all),
streamed from the server without a page limit and resumed if the connection
drops, so every event is printed once, in order. --limit stops after that
many; --backward reads newest first; --until-time reads the stream as it was
at that moment (RFC 3339).`,
		Example: `  eventlog read user-42
  eventlog read user-42 --backward --limit 10 -o ndjson
  eventlog read user-42 --until-time 2026-11-22T10:47:30Z -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := client.ReplayOptions{From: from, To: to, Backward: backward}
			if untilTime != "" {
				t, err := time.Parse(time.RFC3339Nano, untilTime)
				if err != nil {
					return fmt.Errorf("--until-time: %w", err)
				}
				opts.UntilTime = t
			}
			if limit < 0 || from < 0 || to < 0 {
				return errors.New("--from, --to and --limit must not be negative")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, cancel := a.ctx(cmd)
			defer cancel()
			w := a.events(false)
			n := 0
			for ev, err := range c.Replay(ctx, args[0], opts) {
				if err != nil {
					return api(err)
				}
				if err := w.event(ev); err != nil {
					return err
				}
				if n++; limit > 0 && n == limit {
					break
				}
			}
			return w.end()
		},
	}
	f := cmd.Flags()
	f.Int64Var(&from, "from", 0, "lowest version (default 1)")
	f.Int64Var(&to, "to", 0, "highest version, inclusive (default: the head)")
	f.IntVarP(&limit, "limit", "n", 0, "stop after this many events (0: all)")
	f.BoolVarP(&backward, "backward", "b", false, "newest first")
	f.StringVar(&untilTime, "until-time", "", "only events committed at or before this moment (RFC 3339)")
	return cmd
}

func (a *app) tailCommand() *cobra.Command {
	var (
		feed, from string
		count      int
		exit       bool
	)
	cmd := &cobra.Command{
		Use:   "tail [STREAM | --feed FEED]",
		Short: "Follow a stream or a feed live, like kcat -C",
		Long: `tail prints a stream's events from --from (a version, default 1), or a
feed's events after --from (a position a previous tail printed, "now", or
the start), then follows live until interrupted; it reconnects and resumes
by itself when the connection drops. --count stops after that many events;
--exit stops once caught up instead of following.

A feed is all, category/<category> or type/<event type>. Positions are
opaque: resume a feed with the last position printed (the POSITION column,
or "position" in json/ndjson).`,
		Example: `  eventlog tail user-42 --from 3
  eventlog tail --feed all --from now -o ndjson
  eventlog tail --feed category/user --from "$LAST_POSITION" --count 100`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case feed == "" && len(args) == 0:
				return errors.New("give a STREAM or --feed FEED")
			case feed != "" && len(args) == 1:
				return errors.New("give a STREAM or --feed FEED, not both")
			case count < 0:
				return errors.New("--count must not be negative")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			// A live tail runs until interrupted: --timeout does not bound it.
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			if feed != "" {
				return a.tailFeed(ctx, c, feed, from, count, exit)
			}
			return a.tailStream(ctx, c, args[0], from, count, exit)
		},
	}
	f := cmd.Flags()
	f.StringVar(&feed, "feed", "", "follow a feed: all, category/<c> or type/<t>")
	f.StringVar(&from, "from", "", "stream: first version; feed: a position to start after, or now")
	f.IntVarP(&count, "count", "c", 0, "stop after this many events (0: no limit)")
	f.BoolVarP(&exit, "exit", "e", false, "stop once caught up instead of following")
	_ = cmd.RegisterFlagCompletionFunc("feed", cobra.FixedCompletions([]string{"all", "category/", "type/"}, cobra.ShellCompDirectiveNoSpace))
	return cmd
}

func (a *app) tailStream(ctx context.Context, c *client.Client, stream, from string, count int, exit bool) error {
	var v int64
	if from != "" {
		// ParseInt, not Sscan: Sscan stops at the first non-digit and
		// would take "2abc" for 2.
		n, err := strconv.ParseInt(from, 10, 64)
		if err != nil || n < 1 {
			return fmt.Errorf("--from of a stream must be a version >= 1, not %q", from)
		}
		v = n
	}
	w := a.events(false)
	n := 0
	seq := c.Subscribe(ctx, stream, client.SubscribeOptions{From: v})
	if exit {
		seq = c.Replay(ctx, stream, client.ReplayOptions{From: v})
	}
	for ev, err := range seq {
		if err != nil {
			return api(err)
		}
		if err := w.event(ev); err != nil {
			return err
		}
		if n++; count > 0 && n == count {
			break
		}
	}
	return w.end()
}

func (a *app) tailFeed(ctx context.Context, c *client.Client, feed, from string, count int, exit bool) error {
	w := a.events(true)
	n := 0
	seq := c.SubscribeFeed(ctx, feed, client.FeedOptions{From: from})
	if exit {
		seq = c.Feed(ctx, feed, client.FeedOptions{From: from})
	}
	for ev, err := range seq {
		if err != nil {
			return api(err)
		}
		if err := w.feedEvent(ev); err != nil {
			return err
		}
		if n++; count > 0 && n == count {
			break
		}
	}
	return w.end()
}

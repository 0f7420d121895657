package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/eventlog/eventlog/client"
)

func (a *app) streamsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "streams",
		Short: "List and describe streams",
	}
	info := &cobra.Command{
		Use:     "info STREAM",
		Short:   "Print a stream's version, times, buckets and latest snapshot",
		Example: `  eventlog streams info user-42 -o json`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, cancel := a.ctx(cmd)
			defer cancel()
			i, err := c.StreamInfo(ctx, args[0])
			if err != nil {
				return api(err)
			}
			// The client keeps the snapshot version out of its JSON (0 is
			// "none" there, null on the wire): show it as the server does.
			out := struct {
				Stream                string    `json:"stream"`
				Category              string    `json:"category"`
				Version               int64     `json:"version"`
				CreatedAt             time.Time `json:"created_at"`
				UpdatedAt             time.Time `json:"updated_at"`
				Buckets               int       `json:"buckets"`
				CurrentBucket         int64     `json:"current_bucket"`
				LatestSnapshotVersion *int64    `json:"latest_snapshot_version"`
			}{i.Stream, i.Category, i.Version, i.CreatedAt, i.UpdatedAt, i.Buckets, i.CurrentBucket, nil}
			snap := "none"
			if i.LatestSnapshotVersion > 0 {
				out.LatestSnapshotVersion = &i.LatestSnapshotVersion
				snap = fmt.Sprint(i.LatestSnapshotVersion)
			}
			return a.writeValue(out, func(w io.Writer) {
				fmt.Fprintln(w, "STREAM\tCATEGORY\tVERSION\tCREATED\tUPDATED\tBUCKETS\tSNAPSHOT")
				fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%d\t%s\n", i.Stream, i.Category, i.Version, formatTime(i.CreatedAt), formatTime(i.UpdatedAt), i.Buckets, snap)
			})
		},
	}
	cmd.AddCommand(a.listCommand(), info)
	return cmd
}

func (a *app) groupsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "groups",
		Short: "List, inspect and delete consumer groups",
	}
	describe := &cobra.Command{
		Use:     "describe GROUP",
		Short:   "Print a group's feed, members, partitions (owner, checkpoint, lag) and total lag",
		Example: `  eventlog groups describe billing`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, cancel := a.ctx(cmd)
			defer cancel()
			g, err := c.GroupInfo(ctx, args[0])
			if err != nil {
				return api(err)
			}
			return a.writeValue(g, func(w io.Writer) {
				capped := ""
				if g.LagCapped {
					capped = " (at least)"
				}
				fmt.Fprintf(w, "GROUP\t%s\nFEED\t%s\nCREATED\t%s\nWATERMARK\t%s\nLAG\t%d%s\n", g.Group, g.Feed, formatTime(g.CreatedAt), formatTime(g.Watermark), g.Lag, capped)
				fmt.Fprintln(w, "\nMEMBER\tEXPIRES")
				for _, m := range g.Members {
					fmt.Fprintf(w, "%s\t%s\n", m.Member, formatTime(m.ExpiresAt))
				}
				fmt.Fprintln(w, "\nPARTITION\tOWNER\tEPOCH\tLEASE UNTIL\tLAG\tCHECKPOINT")
				for _, p := range g.Partitions {
					owner := p.Owner
					if owner == "" {
						owner = "-"
					}
					fmt.Fprintf(w, "%d\t%s\t%d\t%s\t%d\t%s\n", p.Partition, owner, p.Epoch, formatTime(p.LeaseUntil), p.Lag, p.Checkpoint)
				}
			})
		},
	}
	evict := &cobra.Command{
		Use:     "evict GROUP MEMBER",
		Aliases: []string{"leave"},
		Short:   "Remove a member: its partitions move to the others at once",
		Long: `evict removes MEMBER from GROUP without its secret, as an operator does
with a worker that hangs or is gone: its partitions are released at once
(events it handled but did not acknowledge come again to the next owner).
The key needs the admin scope. Evicting a member that is not there is not
an error.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, cancel := a.ctx(cmd)
			defer cancel()
			return api(c.EvictMember(ctx, args[0], args[1]))
		},
	}
	del := &cobra.Command{
		Use:   "delete GROUP",
		Short: "Delete a group with its members and checkpoints (shards write path)",
		Long: `delete removes GROUP, its members and its checkpoints: members get
403/404 from then on, and a group of the same name starts again from the
beginning of its feed. Deleting a group that does not exist is exit code 2.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, cancel := a.ctx(cmd)
			defer cancel()
			return api(c.DeleteGroup(ctx, args[0]))
		},
	}
	cmd.AddCommand(a.groupsListCommand(), describe, evict, del)
	return cmd
}

func (a *app) groupsListCommand() *cobra.Command {
	var (
		opts  client.ListGroupsOptions
		limit int
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List consumer groups (by name) with their feed, creation time and live members",
		Long: `list prints the groups the token may describe (its group scopes match the
name and it may read the group's feed; an admin token sees all), by name,
following the server's pages until the end or --limit groups. Lag is not
listed: 'groups describe GROUP' counts it. -o json prints an array, -o
ndjson one group per line.`,
		Example: `  eventlog groups list
  eventlog groups list --after billing --limit 10 -o ndjson`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 0 {
				return fmt.Errorf("--limit must not be negative")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, cancel := a.ctx(cmd)
			defer cancel()
			out, err := allPages(limit, opts.After, func(n int, after string) ([]client.GroupSummary, string, error) {
				opts.Limit, opts.After = n, after
				page, err := c.ListGroups(ctx, opts)
				if err != nil {
					return nil, "", err
				}
				return page.Groups, page.Next, nil
			})
			if err != nil {
				return api(err)
			}
			return writeListTo(a, out, func(w io.Writer) {
				fmt.Fprintln(w, "GROUP\tFEED\tCREATED\tMEMBERS")
				for _, g := range out {
					fmt.Fprintf(w, "%s\t%s\t%s\t%d\n", g.Group, g.Feed, formatTime(g.CreatedAt), g.Members)
				}
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.After, "after", "", "start after this group")
	f.IntVar(&limit, "limit", 0, "stop after this many groups (0: all)")
	return cmd
}

func (a *app) healthCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "health",
		Short: "Check that the server is up and ready (Cassandra reachable, schema current)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, cancel := a.ctx(cmd)
			defer cancel()
			if err := c.Health(ctx); err != nil {
				return api(err)
			}
			if err := c.Ready(ctx); err != nil {
				return api(err)
			}
			_, err = fmt.Fprintln(a.stdout, "ok")
			return err
		},
	}
}

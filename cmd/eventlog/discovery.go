package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/eventlog/eventlog/client"
)

// listCommand is streams list: every matching stream, page after page.
func (a *app) listCommand() *cobra.Command {
	var (
		opts  client.ListStreamsOptions
		limit int
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List streams (by category, then id) with their version and last update",
		Long: `list prints the streams the token may read, by category then id, following
the server's pages until the end or --limit streams. -o json prints an
array, -o ndjson one stream per line.`,
		Example: `  eventlog streams list --prefix user-4
  eventlog streams list --category order --limit 10 -o ndjson`,
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
			out, err := allPages(limit, opts.After, func(n int, after string) ([]client.StreamSummary, string, error) {
				opts.Limit, opts.After = n, after
				page, err := c.ListStreams(ctx, opts)
				if err != nil {
					return nil, "", err
				}
				return page.Streams, page.Next, nil
			})
			if err != nil {
				return api(err)
			}
			return a.writeList(out, func(w io.Writer) {
				fmt.Fprintln(w, "STREAM\tCATEGORY\tVERSION\tCREATED\tUPDATED")
				for _, s := range out {
					fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\n", s.Stream, s.Category, s.Version, formatTime(s.CreatedAt), formatTime(s.UpdatedAt))
				}
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Prefix, "prefix", "", "only streams whose id starts with this")
	f.StringVar(&opts.Category, "category", "", "only the streams of this category")
	f.StringVar(&opts.After, "after", "", "start after this stream")
	f.IntVar(&limit, "limit", 0, "stop after this many streams (0: all)")
	return cmd
}

// allPages follows a listing's pages from after until its end, or until
// limit items when limit > 0; fetch reads one page of at most n items (0:
// the server's default) and returns its items and next cursor.
func allPages[T any](limit int, after string, fetch func(n int, after string) ([]T, string, error)) ([]T, error) {
	var out []T
	for {
		n := 0
		if limit > 0 {
			n = min(1000, limit-len(out))
		}
		items, next, err := fetch(n, after)
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
		if next == "" || limit > 0 && len(out) >= limit {
			return out, nil
		}
		after = next
	}
}

// writeList writes a list of values: a JSON array (json), one per line
// (ndjson), or what table prints.
func writeListTo[T any](a *app, vs []T, table func(w io.Writer)) error {
	if a.output == "ndjson" {
		enc := json.NewEncoder(a.stdout)
		for _, v := range vs {
			if err := enc.Encode(v); err != nil {
				return err
			}
		}
		return nil
	}
	if vs == nil {
		vs = []T{}
	}
	return a.writeValue(vs, table)
}

func (a *app) writeList(vs []client.StreamSummary, table func(w io.Writer)) error {
	return writeListTo(a, vs, table)
}

func (a *app) categoriesCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "categories",
		Short: "List the categories with their stream counts",
		Long: `categories prints the categories the token may read whole, with how many
streams each holds (exact up to 100,000; past it a lower bound, shown with
a "+").`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, cancel := a.ctx(cmd)
			defer cancel()
			cs, err := c.Categories(ctx)
			if err != nil {
				return api(err)
			}
			return writeListTo(a, cs, func(w io.Writer) {
				fmt.Fprintln(w, "CATEGORY\tSTREAMS")
				for _, cc := range cs {
					plus := ""
					if !cc.Exact {
						plus = "+"
					}
					fmt.Fprintf(w, "%s\t%d%s\n", cc.Category, cc.Streams, plus)
				}
			})
		},
	}
}

func (a *app) eventCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "event ID",
		Short: "Print an event by its id, wherever it is",
		Long: `event finds an event by its id in the server's event index and prints it
with its stream. An id that is not a UUIDv7 is found only within an hour of
its commit. Ids are unique within a stream only: of the streams holding the
id that the key may read, the event of the newest index minute (a UUIDv7 id
has one) and, within it, committed earliest is printed. Exit code 2 when
there is none.`,
		Example: `  eventlog event 0190a1b2-0000-7000-8000-000000000001 -o json`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := uuid.Parse(args[0])
			if err != nil {
				return fmt.Errorf("event id %q: %w", args[0], err)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, cancel := a.ctx(cmd)
			defer cancel()
			e, err := c.EventByID(ctx, id)
			if err != nil {
				return api(err)
			}
			return a.writeValue(e, func(w io.Writer) {
				fmt.Fprintf(w, "STREAM\t%s\nVERSION\t%d\nID\t%s\nTYPE\t%s\nTIME\t%s\nDATA\t%s\n", e.Stream, e.Version, e.ID, e.Type, formatTime(e.Time), e.Data)
				if e.Metadata != nil {
					fmt.Fprintf(w, "METADATA\t%s\n", e.Metadata)
				}
			})
		},
	}
}

func (a *app) clusterCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "cluster",
		Short: "Print the server instances, the shards each owns, and the Cassandra nodes",
		Long: `cluster prints the instances serving the server's keyspace (id, address,
version, schema version, start, shards owned with their epochs), shards without an owner,
and the Cassandra nodes with their state. Needs an admin token when keys
are required.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, cancel := a.ctx(cmd)
			defer cancel()
			cl, err := c.Cluster(ctx)
			if err != nil {
				return api(err)
			}
			return a.writeValue(cl, func(w io.Writer) {
				fmt.Fprintf(w, "KEYSPACE\t%s\nSHARDS\t%d\n", cl.Keyspace, cl.Shards)
				if len(cl.Unowned) > 0 {
					fmt.Fprintf(w, "UNOWNED\t%v\n", cl.Unowned)
				}
				fmt.Fprintln(w, "\nINSTANCE\tADDRESS\tVERSION\tSCHEMA\tSTARTED\tSHARDS (shard:epoch)")
				for _, in := range cl.Instances {
					var sh []string
					for _, s := range in.Shards {
						sh = append(sh, fmt.Sprintf("%d:%d", s.Shard, s.Epoch))
					}
					self := ""
					if in.ID == cl.Self {
						self = " (this)"
					}
					schema := "-"
					if in.SchemaVersion > 0 {
						schema = strconv.Itoa(in.SchemaVersion)
					}
					fmt.Fprintf(w, "%s%s\t%s\t%s\t%s\t%s\t%s\n", in.ID, self, orDash(in.Address), in.Version, schema, formatTime(in.Started), strings.Join(sh, " "))
				}
				fmt.Fprintln(w, "\nNODE\tSTATE\tDC\tRACK\tVERSION\tHOST ID")
				for _, n := range cl.Nodes {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", n.Address, n.State, n.DataCenter, n.Rack, n.ReleaseVersion, n.HostID)
				}
			})
		},
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

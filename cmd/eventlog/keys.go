package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/eventlog/eventlog/client"
)

// keysCommand is keys create|list|revoke, over the server's admin routes
// (the token needs the admin scope). `server keys` does the same against
// Cassandra directly, for the first key.
func (a *app) keysCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create, list and revoke API keys (admin scope)",
		Long: `keys manages the server's API keys over HTTP; the token needs the admin
scope. The first admin key is made with "server keys create" against
Cassandra, before any token exists. A server that does not authenticate
refuses these routes (403 authentication_disabled): use "server keys"
there.`,
	}
	var (
		nk     client.NewKey
		scopes []string
	)
	create := &cobra.Command{
		Use:   "create --name NAME --scope SCOPE [--scope SCOPE…]",
		Short: "Create a key: its token is printed once, alone on the last line",
		Long: `create makes an API key and prints its token, which the server shows only
this once, alone on the last line (a script takes the last line); -o json
prints the key with a "token" field. Scopes are ACTION:PATTERN (read,
append, snapshot, group) or admin.`,
		Example: `  eventlog keys create --name billing --scope read:order-* --scope group:billing-* --expires 720h
  TOKEN=$(eventlog keys create --name ci --scope admin | tail -n 1)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			nk.Scopes = scopes
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, cancel := a.ctx(cmd)
			defer cancel()
			k, token, err := c.CreateKey(ctx, nk)
			if err != nil {
				return api(err)
			}
			if a.output != "table" {
				return a.writeValue(struct {
					client.APIKey
					Token string `json:"token"`
				}{k, token}, nil)
			}
			fmt.Fprintf(a.stdout, "key %s created with scopes %s; its token (shown once):\n%s\n", k.Name, strings.Join(k.Scopes, " "), token)
			return nil
		},
	}
	create.Flags().StringVar(&nk.Name, "name", "", "the key's name (required)")
	create.Flags().StringArrayVar(&scopes, "scope", nil, "a scope, ACTION:PATTERN or admin (repeatable; at least one)")
	create.Flags().DurationVar(&nk.Expires, "expires", 0, "lifetime, e.g. 720h (default: none)")
	create.Flags().Float64Var(&nk.RateLimit, "rate-limit", 0, "requests a second (default: the server's)")
	_ = create.MarkFlagRequired("name")
	_ = create.MarkFlagRequired("scope")

	list := &cobra.Command{
		Use:   "list",
		Short: "List the keys: name, status, scopes, dates (never a token)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, cancel := a.ctx(cmd)
			defer cancel()
			keys, err := c.ListKeys(ctx)
			if err != nil {
				return api(err)
			}
			return writeListTo(a, keys, func(w io.Writer) {
				fmt.Fprintln(w, "NAME\tSTATUS\tSCOPES\tCREATED\tEXPIRES")
				for _, k := range keys {
					exp := "-"
					if !k.ExpiresAt.IsZero() {
						exp = formatTime(k.ExpiresAt)
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", k.Name, k.Status, strings.Join(k.Scopes, " "), formatTime(k.CreatedAt), exp)
				}
			})
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke a key: every instance refuses it within seconds",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, cancel := a.ctx(cmd)
			defer cancel()
			return api(c.RevokeKey(ctx, args[0]))
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

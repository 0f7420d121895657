package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/eventlog/eventlog/internal/auth"
	"github.com/eventlog/eventlog/internal/cassandra/keystore"
)

// scopeFlags collects repeated --scope values (each may also list several,
// comma-separated).
type scopeFlags []string

func (s *scopeFlags) String() string { return strings.Join(*s, ",") }
func (s *scopeFlags) Set(v string) error {
	*s = append(*s, auth.ParseScopeList(v)...)
	return nil
}

// runKeys runs `server keys create|list|revoke`: it talks to Cassandra
// directly, with the same flags and environment as serve, so the first
// admin key can be made before any server runs. create prints the token
// alone on the last line of stdout, so a script can capture it.
func runKeys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(stderr, "server keys: want create, list or revoke (see server --help)")
		return 2
	}
	sub, args := args[0], args[1:]
	var (
		name    string
		scopes  scopeFlags
		expires time.Duration
		rate    float64
		nargs   int
		extra   func(*flag.FlagSet)
	)
	switch sub {
	case "create":
		extra = func(fs *flag.FlagSet) {
			fs.StringVar(&name, "name", "", "key name: 1-100 characters from A-Z a-z 0-9 _ . : @ + = -")
			fs.Var(&scopes, "scope", "a scope, repeatable: read|append|snapshot|group:PATTERN or admin")
			fs.DurationVar(&expires, "expires", 0, "lifetime of the key (Go duration, e.g. 720h); 0: no expiry")
			fs.Float64Var(&rate, "key-rate-limit", 0, "the key's own requests a second; 0: the server's --rate-limit")
		}
	case "list":
	case "revoke":
		// The name may come first (keys revoke NAME --flags) or last.
		nargs = 1
		if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
			name, args, nargs = args[0], args[1:], 0
		}
	default:
		fmt.Fprintf(stderr, "server keys: unknown command %q (want create, list or revoke)\n", sub)
		return 2
	}
	m := NewMain()
	m.Stderr = stderr
	pos, err := m.Config.parse("server keys "+sub, args, getenv, stderr, extra, "", nargs)
	if err == errHelp {
		return 0
	}
	if err == nil && sub == "revoke" {
		if len(pos) == 1 {
			name = pos[0]
		}
		if name == "" {
			err = fmt.Errorf("keys revoke takes the key's name")
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "server: %v\n", err)
		return 2
	}
	session, o, ok := m.connectTool(ctx)
	if !ok {
		return 1
	}
	defer session.Close()
	ks, err := keystore.New(session, o.SerialConsistency, o.Timeout)
	if err != nil {
		m.logger().Error("key store", "error", err)
		return 1
	}
	switch sub {
	case "create":
		k, token, err := auth.NewKey(name, scopes, expires, auth.StoreNow(ctx, ks, time.Now))
		k.RateLimit = rate
		if err == nil && rate < 0 {
			err = fmt.Errorf("--key-rate-limit must not be negative")
		}
		if err == nil {
			err = ks.CreateKey(ctx, k)
		}
		if err != nil {
			fmt.Fprintf(stderr, "server keys create: %v\n", err)
			return 1
		}
		m.logger().Info("audit", "action", "key_created", "key", k.Name, "scopes", k.ScopeStrings(), "expires", optional(k.Expires), "by", "cli")
		fmt.Fprintf(stdout, "created key %s with scopes %s (expires: %s); its token, shown only now:\n%s\n",
			k.Name, strings.Join(k.ScopeStrings(), " "), optional(k.Expires), token)
	case "list":
		keys, err := ks.Keys(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "server keys list: %v\n", err)
			return 1
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tSTATUS\tSCOPES\tRATE\tCREATED\tEXPIRES\tREVOKED")
		now := auth.StoreNow(ctx, ks, time.Now)
		for i := range keys {
			k := &keys[i]
			status := "active"
			if !k.Revoked.IsZero() {
				status = "revoked"
			} else if !k.Active(now) {
				status = "expired"
			}
			rate := "-"
			if k.RateLimit > 0 {
				rate = fmt.Sprintf("%g/s", k.RateLimit)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.Name, status, strings.Join(k.ScopeStrings(), ","), rate,
				optional(k.Created), optional(k.Expires), optional(k.Revoked))
		}
		tw.Flush()
	case "revoke":
		if err := ks.RevokeKey(ctx, name, auth.StoreNow(ctx, ks, time.Now)); err != nil {
			fmt.Fprintf(stderr, "server keys revoke: %v\n", err)
			return 1
		}
		m.logger().Info("audit", "action", "key_revoked", "key", name, "by", "cli")
		fmt.Fprintf(stdout, "revoked key %s: refused by every server within 10s\n", name)
	}
	return 0
}

// optional formats t for the key listing ("-" for none).
func optional(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

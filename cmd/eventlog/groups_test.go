package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/eventlog/eventlog/client"
)

// TestGroupsList: groups list prints every group by name with its feed
// and live members, as a table, a JSON array or NDJSON lines, following
// the server's pages; --limit stops early.
func TestGroupsList(t *testing.T) {
	ts := mustServer(t)
	c, err := client.New(client.Options{BaseURL: ts.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if out := ts.mustRun(t, exitOK, "groups", "list", "-o", "json").stdout; strings.TrimSpace(out) != "[]" {
		t.Fatalf("no groups: %q, want []", out)
	}
	for _, j := range []struct {
		group, member string
		feed          string
	}{
		{"shipping", "w-1", client.AllFeed},
		{"billing", "w-1", client.CategoryFeed("user")},
		{"billing", "w-2", client.CategoryFeed("user")},
		{"audit", "a-1", client.TypeFeed("UserCreated")},
	} {
		if _, err := c.JoinGroup(ctx, j.group, client.JoinOptions{Feed: j.feed, Member: j.member}); err != nil {
			t.Fatal(err)
		}
	}
	var all []client.GroupSummary
	if err := json.Unmarshal([]byte(ts.mustRun(t, exitOK, "groups", "list", "-o", "json").stdout), &all); err != nil {
		t.Fatal(err)
	}
	want := []string{"audit type/UserCreated 1", "billing category/user 2", "shipping all 1"}
	if got := summaries(all); strings.Join(got, ",") != strings.Join(want, ",") || all[0].CreatedAt.IsZero() {
		t.Fatalf("groups list -o json: %+v, want %v", all, want)
	}
	lines := ndjson[client.GroupSummary](t, ts.mustRun(t, exitOK, "groups", "list", "--after", "audit", "--limit", "1", "-o", "ndjson").stdout)
	if got := summaries(lines); len(got) != 1 || got[0] != want[1] {
		t.Fatalf("groups list --after audit --limit 1: %v", got)
	}
	table := ts.mustRun(t, exitOK, "groups", "list").stdout
	for _, s := range []string{"GROUP", "MEMBERS", "billing", "category/user", "shipping"} {
		if !strings.Contains(table, s) {
			t.Fatalf("table lacks %q:\n%s", s, table)
		}
	}
	ts.mustRun(t, exitUsage, "groups", "list", "--limit", "-1")

	// Pages of one, through the client: the same groups.
	var paged []client.GroupSummary
	opts := client.ListGroupsOptions{Limit: 1}
	for {
		page, err := c.ListGroups(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		paged = append(paged, page.Groups...)
		if page.Next == "" {
			break
		}
		opts.After = page.Next
	}
	if got := summaries(paged); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("client pages of 1: %v, want %v", got, want)
	}
}

func summaries(gs []client.GroupSummary) []string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = fmt.Sprintf("%s %s %d", g.Group, g.Feed, g.Members)
	}
	return out
}

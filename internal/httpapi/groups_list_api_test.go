package httpapi_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/auth"
)

type groupListResp struct {
	Groups []struct {
		Group     string `json:"group"`
		Feed      string `json:"feed"`
		CreatedAt string `json:"created_at"`
		Members   int    `json:"members"`
	} `json:"groups"`
	Next *string `json:"next"`
}

// listGroups follows GET /v1/groups page by page (limit per page) as
// bearer ("": no key) and returns "group feed members" per group.
func listGroups(tb testing.TB, as *authServer, bearer string, limit int) []string {
	tb.Helper()
	var out []string
	after := ""
	for range 100 {
		r := as.As(tb, bearer, "GET", fmt.Sprintf("/v1/groups?limit=%d&after=%s", limit, after), "")
		page := mustStrictJSON[groupListResp](tb, "list groups", r)
		if len(page.Groups) > limit {
			tb.Fatalf("%d groups in a page of %d", len(page.Groups), limit)
		}
		for _, g := range page.Groups {
			if _, err := time.Parse(time.RFC3339Nano, g.CreatedAt); err != nil {
				tb.Fatalf("created_at %q: %v", g.CreatedAt, err)
			}
			out = append(out, fmt.Sprintf("%s %s %d", g.Group, g.Feed, g.Members))
		}
		if page.Next == nil {
			return out
		}
		after = *page.Next
	}
	tb.Fatal("more than 100 pages")
	return nil
}

// TestListGroups: GET /v1/groups lists the groups by name with feed and
// live members, in pages; a key sees only the groups it could describe
// (group scope on the name and read on the feed), admin all.
func TestListGroups(t *testing.T) {
	as := MustAuthServer(t, auth.Options{}, nil)
	root := as.MustToken(t, "root", 0, "admin")
	billing := as.MustToken(t, "billing", 0, "group:billing-*", "read:user*")
	nofeed := as.MustToken(t, "nofeed", 0, "group:billing-*")
	reader := as.MustToken(t, "reader", 0, "read:*")

	if got := listGroups(t, as, root, 10); len(got) != 0 {
		t.Fatalf("no group yet, listed %v", got)
	}
	join := func(group, feed, member string) {
		t.Helper()
		r := as.As(t, root, "POST", "/v1/groups/"+group+"/members", fmt.Sprintf(`{"feed":%q,"member":%q}`, feed, member), "Content-Type", jsonCT)
		if r.Status != http.StatusOK {
			t.Fatalf("join %s: %s", group, r)
		}
	}
	join("billing-a", "category/user", "w-1")
	join("billing-a", "category/user", "w-2")
	join("billing-b", "all", "w-1")
	join("audit", "type/UserCreated", "w-1")
	join("billing-c", "category/user", "w-1")

	all := []string{"audit type/UserCreated 1", "billing-a category/user 2", "billing-b all 1", "billing-c category/user 1"}
	for _, limit := range []int{1, 2, 100} {
		if got := listGroups(t, as, root, limit); !slices.Equal(got, all) {
			t.Fatalf("admin, pages of %d: %v, want %v", limit, got, all)
		}
	}
	t.Run("Scopes", func(t *testing.T) {
		// billing-b follows all: the billing key may not read it.
		if got, want := listGroups(t, as, billing, 1), []string{"billing-a category/user 2", "billing-c category/user 1"}; !slices.Equal(got, want) {
			t.Fatalf("group:billing-* read:user*: %v, want %v", got, want)
		}
		if got := listGroups(t, as, nofeed, 10); len(got) != 0 {
			t.Fatalf("a key that reads no feed listed %v", got)
		}
		if got := listGroups(t, as, reader, 10); len(got) != 0 {
			t.Fatalf("a key without group scopes listed %v", got)
		}
		MustProblem(t, as.As(t, "", "GET", "/v1/groups", ""), http.StatusUnauthorized, "unauthenticated")
	})
	t.Run("MembersLeave", func(t *testing.T) {
		r := as.As(t, root, "DELETE", "/v1/groups/billing-a/members/w-2?evict=true", "")
		if r.Status != http.StatusNoContent {
			t.Fatalf("evict: %s", r)
		}
		if got := listGroups(t, as, root, 100); got[1] != "billing-a category/user 1" {
			t.Fatalf("after w-2 left: %v", got)
		}
		if r := as.As(t, root, "DELETE", "/v1/groups/audit", ""); r.Status != http.StatusNoContent {
			t.Fatalf("delete: %s", r)
		}
		if got := listGroups(t, as, root, 100); len(got) != 3 || got[0] != "billing-a category/user 1" {
			t.Fatalf("after deleting audit: %v", got)
		}
	})
	t.Run("ErrLimit", func(t *testing.T) {
		MustProblem(t, as.As(t, root, "GET", "/v1/groups?limit=1001", ""), http.StatusBadRequest, "invalid_request")
		MustProblem(t, as.As(t, root, "GET", "/v1/groups?limit=0", ""), http.StatusBadRequest, "invalid_request")
	})
}

package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

// TestCategoriesReadsEveryPage: GET /v1/categories answers a page at a
// time; Categories follows each page's next (a sealed cursor included)
// until it is null, so a caller still gets every category.
func TestCategoriesReadsEveryPage(t *testing.T) {
	pages := map[string]string{
		"":     `{"categories":[{"category":"a","streams":1,"exact":true}],"next":"~c1"}`,
		"~c1":  `{"categories":[],"next":"b"}`,
		"b":    `{"categories":[{"category":"c","streams":2,"exact":false}],"next":null}`,
		"else": `{"type":"about:blank","status":400,"code":"invalid_request"}`,
	}
	var afters []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		after := r.URL.Query().Get("after")
		afters = append(afters, after)
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path != "/v1/categories" || r.URL.Query().Get("limit") != "1000" {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(pages["else"]))
			return
		}
		w.Write([]byte(pages[after]))
	}))
	defer srv.Close()
	cl, err := New(Options{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	got, err := cl.Categories(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []CategoryCount{{Category: "a", Streams: 1, Exact: true}, {Category: "c", Streams: 2}}
	if !slices.Equal(got, want) || !slices.Equal(afters, []string{"", "~c1", "b"}) {
		t.Fatalf("categories %+v after %q, want %+v after %q", got, afters, want, []string{"", "~c1", "b"})
	}
}

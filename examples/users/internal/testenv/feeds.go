package testenv

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/eventlog/eventlog/client"
	"github.com/eventlog/eventlog/internal/log"
)

// FeedHandler serves GET /v1/feeds/{all | category/<c> | type/<t>}?from=
// <token>&limit=<n> from store.ReadFeed, answering a client.FeedPage.
//
// TODO(merge): a stand-in for the server's feed API (branch feeds-http),
// so the example's placeholder consumer can be tested end to end today.
// Delete it, and its route in MustEventlog, when the real one lands.
func FeedHandler(store log.FeedStore) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind, name, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v1/feeds/"), "/")
		feed, err := log.ParseFeed(kind, name)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		after, err := log.ParsePosition(r.URL.Query().Get("from"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		page, err := store.ReadFeed(r.Context(), log.FeedRead{Feed: feed, After: after, Limit: limit})
		var ve *log.ValidationError
		switch {
		case errors.As(err, &ve):
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		case err != nil:
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		out := client.FeedPage{Events: make([]client.FeedEvent, len(page.Events)), Next: page.Next.Token(), CompleteUpTo: page.CompleteUpTo}
		for i, e := range page.Events {
			out.Events[i] = client.FeedEvent{
				Event: client.Event{Stream: string(e.Stream), ID: e.ID, Type: e.Type, Version: e.Version,
					Time: e.Time, Data: e.Data, Metadata: e.Metadata},
				Position: e.Position.Token(),
			}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	})
}

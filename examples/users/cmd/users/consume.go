package main

// TODO(merge): this whole file is a placeholder for the consumer-group
// client being built on branch "groups". When it lands:
//   - delete this file and consume_test.go;
//   - in main.go (Main.Run) replace
//         consume := (&feedPollConsumer{...}).Consume
//     with
//         consume := c.Consume
//     and ConsumeOptions with client.ConsumeOptions;
//   - drop --feed-poll (Config.FeedPoll in config.go, its line in
//     main_test.go); the group client has its own pacing;
//   - drop the /v1/feeds stand-in in internal/testenv (feeds.go and its
//     route in testenv.go), which the server serves by then;
//   - drop the "Before consumer groups are merged" note in README.md.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/eventlog/eventlog/client"
)

// ConsumeOptions mirrors client.ConsumeOptions, field for field.
type ConsumeOptions struct {
	Feed   string // "all", "category/<c>", "type/<t>"
	Member string // stable member id; "" = generated
	Batch  int
}

// feedPollConsumer stands in for client.Consume with the same signature
// and the same at-least-once contract, for one member: it polls
// GET /v1/feeds/<feed>?from=<position> and hands each event to the
// handler, retrying an event until the handler accepts it. Unlike a group
// it keeps its position in memory only, so each start replays the feed
// from the beginning (harmless: the projection is idempotent), and it
// does not share work: run one instance.
type feedPollConsumer struct {
	BaseURL    string
	HTTPClient *http.Client
	Poll       time.Duration // idle wait between reads that found nothing new
	Logger     *slog.Logger
}

// Consume follows opts.Feed until ctx ends (returning ctx's error) or the
// server rejects the read (a 4xx, e.g. a server without feeds).
func (p *feedPollConsumer) Consume(ctx context.Context, group string, opts ConsumeOptions, handle func(ctx context.Context, ev client.FeedEvent) error) error {
	from, failed := "", 0
	for {
		page, err := p.read(ctx, opts.Feed, from, opts.Batch)
		var perm *permanentError
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &perm):
			return err
		case err != nil:
			failed++
			p.Logger.Warn("feed read failed", "group", group, "feed", opts.Feed, "err", err)
			if sleep(ctx, backoff(failed)) != nil {
				return ctx.Err()
			}
			continue
		}
		failed = 0
		for _, ev := range page.Events {
			for n := 1; ; n++ {
				err := handle(ctx, ev)
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
				p.Logger.Warn("handler failed; retrying the event", "group", group, "stream", ev.Stream, "version", ev.Version, "err", err)
				if sleep(ctx, backoff(n)) != nil {
					return ctx.Err()
				}
			}
			from = ev.Position
		}
		if page.Next != "" {
			from = page.Next
		}
		if len(page.Events) < opts.Batch && sleep(ctx, p.Poll) != nil {
			return ctx.Err()
		}
	}
}

// permanentError is a read the server refused: retrying cannot help.
type permanentError struct{ msg string }

func (e *permanentError) Error() string { return e.msg }

func (p *feedPollConsumer) read(ctx context.Context, feed, from string, limit int) (*client.FeedPage, error) {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if from != "" {
		q.Set("from", from)
	}
	u := strings.TrimRight(p.BaseURL, "/") + "/v1/feeds/" + feed + "?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, &permanentError{err.Error()}
	}
	req.Header.Set("Accept", "application/json")
	res, err := p.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if res.StatusCode >= 400 && res.StatusCode < 500 {
		return nil, &permanentError{fmt.Sprintf("GET %s: %s: %.200s (does this eventlog server serve feeds?)", u, res.Status, body)}
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %.200s", u, res.Status, body)
	}
	var page client.FeedPage
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	return &page, nil
}

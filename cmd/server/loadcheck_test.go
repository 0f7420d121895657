package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// appendLoad drives exact-version appends of two events each to the
// streams prefix-0 … prefix-(n-1), several writers per stream, through the
// instance pick names for each request, and records every attempt: what
// was acknowledged at which version, and what had an unknown outcome (a
// transport error, 503, 504, an instance killed or closed under it).
type appendLoad struct {
	prefix   string
	streams  int
	client   *http.Client
	pick     func() string
	mu       sync.Mutex
	attempts map[string][]appendAttempt
	stop     chan struct{}
	wg       sync.WaitGroup
}

type appendAttempt struct {
	ids     []string
	version int64 // acknowledged first version; 0: outcome unknown
}

// startLoad starts writers (writer w appends to stream w mod streams)
// until Stop. pick returns the base URL of a live instance.
func startLoad(t *testing.T, prefix string, streams, writers int, pick func() string) *appendLoad {
	return startLoadWith(t, &http.Client{Timeout: 20 * time.Second}, prefix, streams, writers, pick)
}

// startLoadWith is startLoad sending with client.
func startLoadWith(t *testing.T, client *http.Client, prefix string, streams, writers int, pick func() string) *appendLoad {
	l := &appendLoad{
		prefix: prefix, streams: streams, pick: pick,
		client:   client,
		attempts: map[string][]appendAttempt{}, stop: make(chan struct{}),
	}
	for w := 0; w < writers; w++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.write(t, fmt.Sprintf("%s-%d", prefix, w%streams))
		}()
	}
	return l
}

func (l *appendLoad) write(t *testing.T, stream string) {
	cur := int64(0)
	for {
		select {
		case <-l.stop:
			return
		default:
		}
		a := appendAttempt{ids: []string{uuid.NewString(), uuid.NewString()}}
		body := fmt.Sprintf(`{"expected_version":%d,"events":[{"id":%q,"type":"K","data":{}},{"id":%q,"type":"K","data":{}}]}`, cur, a.ids[0], a.ids[1])
		if cur == 0 {
			body = strings.Replace(body, `"expected_version":0`, `"expected_version":"no_stream"`, 1)
		}
		res, err := l.client.Post(l.pick()+"/v1/streams/"+stream+"/events", "application/json", strings.NewReader(body))
		code, raw := 0, []byte(nil)
		if err == nil {
			raw, _ = io.ReadAll(res.Body)
			res.Body.Close()
			code = res.StatusCode
		}
		var r struct {
			FirstVersion   int64  `json:"first_version"`
			LastVersion    int64  `json:"last_version"`
			Code           string `json:"code"`
			CurrentVersion *int64 `json:"current_version"`
		}
		json.Unmarshal(raw, &r)
		switch {
		case code == http.StatusCreated:
			a.version = r.FirstVersion
			cur = r.LastVersion
		case code == http.StatusConflict && r.Code == "wrong_expected_version" && r.CurrentVersion != nil:
			cur = *r.CurrentVersion
			continue // nothing written
		case code == http.StatusBadRequest || code == http.StatusConflict:
			t.Errorf("%s: %d %s", stream, code, raw)
			return
		default:
			// Unknown: the stream's head, read from a live instance,
			// says where to go on.
			time.Sleep(100 * time.Millisecond)
			if v, ok := headOf(l.client, l.pick(), stream); ok {
				cur = v
			}
		}
		l.mu.Lock()
		l.attempts[stream] = append(l.attempts[stream], a)
		l.mu.Unlock()
	}
}

// Stop ends the writers and waits for them.
func (l *appendLoad) Stop() {
	close(l.stop)
	l.wg.Wait()
}

// check reads every stream and the all feed through base and fails the
// test unless each stream is gapless with no id twice, every
// acknowledged append is stored at its acknowledged versions, every
// append of unknown outcome is entirely there or entirely absent, and the
// all feed holds exactly what the streams hold (every stored event once,
// each stream's in version order, nothing else). It returns the counts of
// acknowledged and unknown appends.
func (l *appendLoad) check(t *testing.T, base string) (acked, unknown int) {
	t.Helper()
	stored := map[string][]string{} // stream -> ids in version order
	for s := 0; s < l.streams; s++ {
		stream := fmt.Sprintf("%s-%d", l.prefix, s)
		evs := readStream(t, l.client, base, stream)
		at := map[string]int64{}
		for i, e := range evs {
			if e.Version != int64(i+1) {
				t.Fatalf("%s: event %d has version %d: a gap", stream, i, e.Version)
			}
			if _, dup := at[e.ID]; dup {
				t.Fatalf("%s: id %s stored twice", stream, e.ID)
			}
			at[e.ID] = e.Version
			stored[stream] = append(stored[stream], e.ID)
		}
		for _, a := range l.attempts[stream] {
			v0, ok0 := at[a.ids[0]]
			v1, ok1 := at[a.ids[1]]
			switch {
			case a.version > 0:
				acked++
				if !ok0 || !ok1 || v0 != a.version || v1 != a.version+1 {
					t.Fatalf("%s: acknowledged append at v%d stored at %d,%d (present %v,%v)", stream, a.version, v0, v1, ok0, ok1)
				}
			case ok0 != ok1 || ok0 && v1 != v0+1:
				t.Fatalf("%s: an append of unknown outcome is half there: %v@%d %v@%d", stream, ok0, v0, ok1, v1)
			default:
				unknown++
			}
		}
		if n := len(evs); n != 2*countStored(l.attempts[stream], at) {
			t.Fatalf("%s: %d events stored, but the attempts account for %d", stream, n, 2*countStored(l.attempts[stream], at))
		}
	}
	if acked == 0 {
		t.Fatal("nothing was acknowledged")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	byStream := map[string][]string{}
	seen := map[string]bool{}
	for _, e := range readNDJSON(t, ctx, base+"/v1/feeds/all") {
		if seen[e.ID] {
			t.Fatalf("feed: event %s (%s@%d) twice", e.ID, e.Stream, e.Version)
		}
		seen[e.ID] = true
		if want := int64(len(byStream[e.Stream]) + 1); e.Version != want {
			t.Fatalf("feed: %s@%d where version %d was due", e.Stream, e.Version, want)
		}
		byStream[e.Stream] = append(byStream[e.Stream], e.ID)
	}
	for s := 0; s < l.streams; s++ {
		stream := fmt.Sprintf("%s-%d", l.prefix, s)
		if got, want := strings.Join(byStream[stream], ","), strings.Join(stored[stream], ","); got != want {
			t.Fatalf("feed: %s has %d events in the all feed, %d in the stream, or another order", stream, len(byStream[stream]), len(stored[stream]))
		}
	}
	if len(byStream) != l.streams {
		t.Fatalf("feed: events of %d streams, want %d", len(byStream), l.streams)
	}
	return acked, unknown
}

// countStored is how many of attempts are in the stream (at: id ->
// version), so that nothing stored comes from outside the attempts.
func countStored(attempts []appendAttempt, at map[string]int64) int {
	n := 0
	for _, a := range attempts {
		if _, ok := at[a.ids[0]]; ok {
			n++
		}
	}
	return n
}

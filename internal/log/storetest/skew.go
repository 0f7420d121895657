package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/log"
)

// testClockSkew: instances whose clocks are hours apart append to the same
// streams at once ("any" and exact appends, one-minute buckets, each
// writer's clock moving 20 s an append); then an instance restarts with
// its clock six hours behind everyone's (and, with several instances,
// another six hours ahead), as a process on a badly set host would, and
// they all write on. Nothing acknowledged is lost or duplicated, versions
// stay gapless, commit times never go back along a stream, buckets roll
// over and reads across them are contiguous, and VersionAt agrees with the
// stored times.
func testClockSkew(t *testing.T, s *suite) {
	var (
		mu     sync.Mutex
		clocks = map[int]*clock{}
	)
	clockOf := func(i int) *clock {
		mu.Lock()
		defer mu.Unlock()
		if clocks[i] == nil {
			clocks[i] = newClock(epoch.Add(time.Duration(i) * 3 * time.Hour))
		}
		return clocks[i]
	}
	c := s.cluster(t, Config{
		BucketWidth: time.Minute,
		Clock:       func(i int) func() time.Time { return clockOf(i).Now },
	})
	const nstreams = 3
	led := newLedger(t)
	var tr transients
	write := func(t *testing.T, appends int) {
		t.Helper()
		stores := storesOf(t, c)
		var wg sync.WaitGroup
		for i, st := range stores {
			for k := 0; k < 2; k++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					stream := log.StreamID(fmt.Sprintf("skew-%d", (i+k)%nstreams))
					exact := k == 1
					var head int64
					for j := 0; j < appends && !t.Failed(); j++ {
						clockOf(i).Advance(20 * time.Second)
						exp := log.Any
						if exact {
							exp = log.ExpectedVersion(head)
						}
						evs := events(1+j%2, fmt.Sprintf("I%d", i))
						res, err := send(st, stream, exp, evs)
						tr.sent()
						switch led.record(stream, evs, res, err) {
						case acked:
							head = res.LastVersion
						case conflict:
							wev, _ := isConflict(err)
							head = wev.Current
							j-- // an exact writer retries from the current version
						default:
							if !tr.note(err) {
								t.Errorf("instance %d: append: %v", i, err)
								return
							}
							if h, err := headOf(st, stream); err == nil {
								head = h
							}
						}
					}
				}()
			}
		}
		wg.Wait()
	}

	s.run(t, "Skewed", func(t *testing.T) {
		write(t, 30)
	})
	s.run(t, "RestartBehind", func(t *testing.T) {
		clockOf(0).Advance(-6 * time.Hour)
		c.Restart(t, 0)
		write(t, 15)
	})
	if n := len(storesOf(t, c)); n > 1 {
		s.run(t, "RestartAhead", func(t *testing.T) {
			clockOf(n - 1).Advance(6 * time.Hour)
			c.Restart(t, n-1)
			write(t, 15)
		})
	}
	if t.Failed() {
		return
	}
	tr.check(t)
	stores := storesOf(t, c)
	streams := led.check(t, stores) // gapless, monotone times, nothing lost
	ctx := ctxT(t)
	for stream, evs := range streams {
		info, err := stores[0].Info(ctx, stream)
		if err != nil || info.Version != int64(len(evs)) || info.Buckets < 3 {
			t.Fatalf("%s: info %+v %v, want %d events in several buckets", stream, info, err, len(evs))
		}
		n := int64(len(evs))
		for _, r := range [][2]int64{{1, n}, {n / 3, 2 * n / 3}, {n / 2, n}, {2, 5}} {
			for i, st := range stores {
				wantVersions(t, fmt.Sprintf("instance %d: %s %d..%d", i, stream, r[0], r[1]),
					readAll(t, st, log.ReadRange{Stream: stream, From: r[0], To: r[1]}), span(r[0], r[1]))
				wantVersions(t, fmt.Sprintf("instance %d: %s %d..%d backward", i, stream, r[0], r[1]),
					readAll(t, st, log.ReadRange{Stream: stream, From: r[0], To: r[1], Backward: true}), span(r[1], r[0]))
			}
		}
		for k, at := range probeTimes(evs) {
			if k%5 != 0 {
				continue
			}
			for i, st := range stores {
				got, err := st.VersionAt(ctx, stream, at)
				if want := oracleVersionAt(evs, at); err != nil || got != want {
					t.Fatalf("instance %d: %s: VersionAt(%s) = %d %v, want %d", i, stream, at.Format(time.RFC3339Nano), got, err, want)
				}
			}
		}
		t.Logf("%s: %d events in %d buckets, %s .. %s", stream, len(evs), info.Buckets,
			evs[0].Time.Format(time.RFC3339), evs[len(evs)-1].Time.Format(time.RFC3339))
	}
}

package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// RetryPolicy says how often and how patiently a call is retried. Zero
// fields take the defaults documented on each through EnsureDefaults.
//
// Retried: 503 unavailable, 504 outcome_unknown, 502, failed connections
// and timeouts (including a response cut short). Never retried: any 4xx,
// 500, and anything after the call's context is done. Retrying an append
// is safe because every event carries an id fixed before the first
// attempt: a retry of a stored append is answered with the original
// versions (Duplicate) and writes nothing.
//
// The wait before retry n (n = 1, 2, …) is drawn uniformly from
// [d/2, d] with d = min(MaxDelay, BaseDelay·2^(n-1)): exponential back-off
// with jitter, so clients that failed together do not retry together.
type RetryPolicy struct {
	// MaxAttempts bounds the attempts of one call, the first included; 1
	// disables retries. Default 5. Replay resumes after any attempt that
	// yielded events, and gives up after MaxAttempts attempts in a row
	// that yielded none (with 1, it does not resume at all).
	MaxAttempts int
	// BaseDelay is the back-off before the first retry. Default 100ms.
	BaseDelay time.Duration
	// MaxDelay caps the back-off. Default 5s.
	MaxDelay time.Duration
}

// EnsureDefaults fills zero fields with their defaults.
func (p *RetryPolicy) EnsureDefaults() {
	if p.MaxAttempts == 0 {
		p.MaxAttempts = 5
	}
	if p.BaseDelay == 0 {
		p.BaseDelay = 100 * time.Millisecond
	}
	if p.MaxDelay == 0 {
		p.MaxDelay = 5 * time.Second
	}
}

// Validate reports the first invalid field.
func (p *RetryPolicy) Validate() error {
	switch {
	case p.MaxAttempts < 1:
		return errors.New("retry: max attempts must be at least 1")
	case p.BaseDelay < 0 || p.MaxDelay < 0:
		return errors.New("retry: delays must not be negative")
	case p.MaxDelay < p.BaseDelay:
		return errors.New("retry: max delay is below base delay")
	}
	return nil
}

// backoff is the wait before retry n (n ≥ 1).
func (p *RetryPolicy) backoff(n int) time.Duration {
	d := p.MaxDelay
	if n <= 32 {
		if e := p.BaseDelay << (n - 1); e > 0 && e < d {
			d = e
		}
	}
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// do runs attempt until it succeeds, fails for good, spends the attempts,
// or ctx is done. If any attempt's outcome was unknown and the last error
// does not say so, the returned error still matches ErrOutcomeUnknown: a
// later "unavailable" does not undo an earlier write that may have landed.
func (p *RetryPolicy) do(ctx context.Context, attempt func() error) error {
	unknown := false
	for n := 1; ; n++ {
		err := attempt()
		if err == nil {
			return nil
		}
		unknown = unknown || errors.Is(err, ErrOutcomeUnknown)
		if !retryable(err) {
			// A refusal of a retry does not undo an earlier attempt that
			// may have been applied (a delete whose answer was lost is
			// 404 when sent again). Only the server's refusals are
			// marked: they stay unretryable, which errors.As finds first.
			var p *Problem
			if errors.As(err, &p) {
				return mark(err, unknown)
			}
			return err
		}
		if ctx.Err() != nil {
			if !errors.Is(err, ctx.Err()) {
				err = fmt.Errorf("%w: %w", ctx.Err(), err)
			}
			return mark(err, unknown)
		}
		if n >= p.MaxAttempts {
			if n > 1 {
				err = fmt.Errorf("%d attempts: %w", n, err)
			}
			return mark(err, unknown)
		}
		if serr := sleep(ctx, p.backoff(n)); serr != nil {
			return mark(fmt.Errorf("%w: %w", serr, err), unknown)
		}
	}
}

// mark makes err match ErrOutcomeUnknown when an attempt's outcome was
// unknown.
func mark(err error, unknown bool) error {
	if !unknown || errors.Is(err, ErrOutcomeUnknown) {
		return err
	}
	return fmt.Errorf("%w (an earlier attempt may have been applied: %w)", err, ErrOutcomeUnknown)
}

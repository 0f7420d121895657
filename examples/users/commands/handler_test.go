package commands_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventlog/eventlog/client"
	"github.com/eventlog/eventlog/examples/users/commands"
	"github.com/eventlog/eventlog/examples/users/internal/testenv"
	"github.com/eventlog/eventlog/examples/users/user"
)

// clock is a test clock: the real time moved by an offset the test sets.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// MustHandler returns a Handler on a fresh eventlog server, its client,
// and the Handler's clock.
func MustHandler(t *testing.T, mod func(*commands.Options)) (*commands.Handler, *client.Client, *clock) {
	t.Helper()
	el := testenv.MustEventlog(t)
	c := el.MustClient(t)
	clk := &clock{}
	o := commands.Options{Now: clk.Now}
	if mod != nil {
		mod(&o)
	}
	h, err := commands.New(c, o)
	if err != nil {
		t.Fatal(err)
	}
	return h, c, clk
}

func ptr(s string) *string { return &s }

// MustHandle runs cmd and fails the test on an error.
func MustHandle(t *testing.T, h *commands.Handler, cmd user.Command) commands.Result {
	t.Helper()
	res, err := h.Handle(testenv.Context(t), cmd)
	if err != nil {
		t.Fatalf("%T %+v: %v", cmd, cmd, err)
	}
	return res
}

// MustLoad loads user id.
func MustLoad(t *testing.T, h *commands.Handler, id string) user.State {
	t.Helper()
	s, err := h.Load(testenv.Context(t), id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestHandle(t *testing.T) {
	h, _, _ := MustHandler(t, nil)
	ctx := testenv.Context(t)

	ada := MustHandle(t, h, user.CreateUser{Name: "Ada", Email: "Ada@Example.com"})
	if ada.ID == "" || ada.Version != 1 || !ada.Changed {
		t.Fatalf("create: %+v", ada)
	}
	if s := MustLoad(t, h, ada.ID); s.Name != "Ada" || s.Email != "ada@example.com" || s.EmailVersion != 1 || s.Version != 1 || s.CreatedAt.IsZero() {
		t.Fatalf("after create: %+v", s)
	}

	t.Run("ErrEmailTaken", func(t *testing.T) {
		_, err := h.Handle(ctx, user.CreateUser{Name: "Eve", Email: "ADA@example.com "})
		if !errors.Is(err, user.ErrEmailTaken) {
			t.Fatalf("err = %v, want ErrEmailTaken", err)
		}
	})
	t.Run("ErrExists", func(t *testing.T) {
		_, err := h.Handle(ctx, user.CreateUser{ID: ada.ID, Name: "Ada", Email: "ada2@example.com"})
		if !errors.Is(err, user.ErrExists) {
			t.Fatalf("err = %v, want ErrExists", err)
		}
	})
	t.Run("Invalid", func(t *testing.T) {
		var inv *user.InvalidError
		if _, err := h.Handle(ctx, user.CreateUser{Name: "", Email: "x@example.com"}); !errors.As(err, &inv) {
			t.Fatalf("err = %v, want *InvalidError", err)
		}
		if _, err := h.Handle(ctx, user.UpdateUser{ID: ada.ID, Email: ptr("nope")}); !errors.As(err, &inv) {
			t.Fatalf("err = %v, want *InvalidError", err)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		if _, err := h.Handle(ctx, user.UpdateUser{ID: "no-such-user", Name: ptr("x")}); !errors.Is(err, user.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})
	t.Run("UpdateName", func(t *testing.T) {
		res := MustHandle(t, h, user.UpdateUser{ID: ada.ID, Name: ptr("Ada Lovelace")})
		if res.Version != 2 || !res.Changed {
			t.Fatalf("%+v", res)
		}
		if res := MustHandle(t, h, user.UpdateUser{ID: ada.ID, Name: ptr("Ada Lovelace")}); res.Version != 2 || res.Changed {
			t.Fatalf("no-op update: %+v", res)
		}
	})
	t.Run("UpdateEmailFreesOld", func(t *testing.T) {
		res := MustHandle(t, h, user.UpdateUser{ID: ada.ID, Email: ptr("ada@lovelace.org")})
		s := MustLoad(t, h, ada.ID)
		if res.Version != 3 || s.Email != "ada@lovelace.org" || s.EmailVersion != 1 {
			t.Fatalf("%+v %+v", res, s)
		}
		// The old address is free again, the new one is not.
		MustHandle(t, h, user.CreateUser{Name: "Other Ada", Email: "ada@example.com"})
		if _, err := h.Handle(ctx, user.CreateUser{Name: "Eve", Email: "ada@lovelace.org"}); !errors.Is(err, user.ErrEmailTaken) {
			t.Fatalf("err = %v, want ErrEmailTaken", err)
		}
	})
	t.Run("DeleteFreesEmail", func(t *testing.T) {
		res := MustHandle(t, h, user.DeleteUser{ID: ada.ID})
		if s := MustLoad(t, h, ada.ID); res.Version != 4 || !s.Deleted {
			t.Fatalf("%+v %+v", res, s)
		}
		for _, cmd := range []user.Command{user.UpdateUser{ID: ada.ID, Name: ptr("x")}, user.DeleteUser{ID: ada.ID}} {
			if _, err := h.Handle(ctx, cmd); !errors.Is(err, user.ErrDeleted) {
				t.Fatalf("%T after delete: %v, want ErrDeleted", cmd, err)
			}
		}
		again := MustHandle(t, h, user.CreateUser{Name: "New Ada", Email: "ada@lovelace.org"})
		// The address's third reservation: Ada's, her release, this one.
		if s := MustLoad(t, h, again.ID); s.EmailVersion != 3 {
			t.Fatalf("email version %d, want 3", s.EmailVersion)
		}
	})
}

// TestConcurrentUpdates: commands racing on one user all get in, each
// decided again on a version conflict.
func TestConcurrentUpdates(t *testing.T) {
	h, c, _ := MustHandler(t, func(o *commands.Options) { o.MaxAttempts = 50 })
	id := MustHandle(t, h, user.CreateUser{Name: "Ada", Email: "ada@example.com"}).ID
	const n = 6
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, err := h.Handle(testenv.Context(t), user.UpdateUser{ID: id, Name: ptr(fmt.Sprintf("Ada %d", i))})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	info, err := c.StreamInfo(testenv.Context(t), user.Stream(id))
	if err != nil || info.Version != 1+n {
		t.Fatalf("stream at %+v, %v; want version %d", info, err, 1+n)
	}
}

// TestConcurrentCreateSameEmail: of users racing for one address exactly
// one gets it.
func TestConcurrentCreateSameEmail(t *testing.T) {
	h, _, _ := MustHandler(t, func(o *commands.Options) { o.MaxAttempts = 50 })
	const n = 6
	var (
		wg    sync.WaitGroup
		won   atomic.Int32
		taken atomic.Int32
	)
	for i := range n {
		wg.Go(func() {
			_, err := h.Handle(testenv.Context(t), user.CreateUser{Name: fmt.Sprintf("User %d", i), Email: "same@example.com"})
			switch {
			case err == nil:
				won.Add(1)
			case errors.Is(err, user.ErrEmailTaken):
				taken.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if won.Load() != 1 || taken.Load() != n-1 {
		t.Fatalf("%d won, %d taken; want 1 and %d", won.Load(), taken.Load(), n-1)
	}
}

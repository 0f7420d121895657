package commands_test

import (
	"errors"
	"testing"
	"time"

	"github.com/eventlog/eventlog/client"
	"github.com/eventlog/eventlog/examples/users/commands"
	"github.com/eventlog/eventlog/examples/users/internal/testenv"
	"github.com/eventlog/eventlog/examples/users/user"
)

// TestStaleReservation: a reservation whose holder never got its user
// event in (it crashed in between) blocks the address for
// ReservationGrace, then the next user takes it over; a held address is
// never taken over.
func TestStaleReservation(t *testing.T) {
	const grace = time.Minute
	h, c, clk := MustHandler(t, func(o *commands.Options) { o.ReservationGrace = grace })
	ctx := testenv.Context(t)

	// A command that crashed after reserving: the reservation, no user.
	_, err := c.Append(ctx, commands.EmailStream("ghost@example.com"), client.NoStream,
		client.EventData{Type: commands.TypeEmailReserved, Data: map[string]string{"email": "ghost@example.com", "user_id": "ghost"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Handle(ctx, user.CreateUser{Name: "Bob", Email: "ghost@example.com"}); !errors.Is(err, user.ErrEmailTaken) {
		t.Fatalf("within the grace: %v, want ErrEmailTaken", err)
	}
	MustHandle(t, h, user.CreateUser{Name: "Ada", Email: "ada@example.com"})

	clk.Advance(grace + time.Second)
	bob := MustHandle(t, h, user.CreateUser{Name: "Bob", Email: "ghost@example.com"})
	if s := MustLoad(t, h, bob.ID); s.Email != "ghost@example.com" || s.EmailVersion != 2 {
		t.Fatalf("after takeover: %+v", s)
	}
	if _, err := h.Handle(ctx, user.CreateUser{Name: "Eve", Email: "ada@example.com"}); !errors.Is(err, user.ErrEmailTaken) {
		t.Fatalf("held address after the grace: %v, want ErrEmailTaken", err)
	}
}

func TestEmailStream(t *testing.T) {
	// printf %s ada@example.com | sha256sum
	const want = "email-b5fc85e55755f9e0d030a10ab4429b6b2944855f9a0d60077fe832becbc41d72"
	if got := commands.EmailStream("ada@example.com"); got != want {
		t.Fatalf("EmailStream = %q, want %q", got, want)
	}
}

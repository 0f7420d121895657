package clienttest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/eventlog/eventlog/client"
)

// TestGroupMemberRestartedAfterACrash: a process that joined as member
// "m" and died without leaving is restarted with the same id. The docs
// said it "resumes at once"; with member secrets it does not: its join,
// without the dead process's secret, is 403 invalid_member_secret (and
// ends Consume) until the old member row expires. Given the secret (kept
// from Membership.Secret), it resumes at once at the same epochs.
func TestGroupMemberRestartedAfterACrash(t *testing.T) {
	url, _ := MustGroupServer(t)
	feed := client.CategoryFeed("rs")
	dead, err := MustClient(t, url).JoinGroup(ctx(t), "g", client.JoinOptions{Feed: feed, Member: "m"})
	if err != nil || dead.Secret == "" || len(dead.Partitions) == 0 {
		t.Fatalf("join: %+v %v", dead, err)
	}
	noop := func(context.Context, client.FeedEvent) error { return nil }
	err = MustClient(t, url).Consume(ctx(t), "g", client.ConsumeOptions{Feed: feed, Member: "m"}, noop)
	if !errors.Is(err, client.ErrInvalidMemberSecret) {
		t.Fatalf("Consume as the crashed member without its secret: %v, want invalid_member_secret", err)
	}
	m, err := MustClient(t, url).JoinGroup(ctx(t), "g", client.JoinOptions{Feed: feed, Member: "m", Secret: dead.Secret})
	if err != nil || len(m.Partitions) != len(dead.Partitions) || m.Partitions[0].Epoch != dead.Partitions[0].Epoch {
		t.Fatalf("join with the kept secret: %+v %v, want the same partitions at the same epochs", m, err)
	}
}

// TestConsumeWithSavedSecret: Consume could not be given the secret of a
// member that a crashed process left behind, so a restart with the same
// id ended at once (invalid_member_secret) until the old member expired.
// With ConsumeOptions.Secret it resumes at once as that member, at the
// same epochs, and handles what was not acknowledged; OnSecret hands out
// the secret a join answers, for saving.
func TestConsumeWithSavedSecret(t *testing.T) {
	url, store := MustGroupServer(t)
	feed := client.CategoryFeed("sv")
	a := newAppender(store, "sv")
	a.round(t, 8)
	// The crashed process: joined, saved its secret, never left.
	dead, err := MustClient(t, url).JoinGroup(ctx(t), "g", client.JoinOptions{Feed: feed, Member: "m"})
	if err != nil || dead.Secret == "" || len(dead.Partitions) != 16 {
		t.Fatalf("join: %+v %v", dead, err)
	}
	tr := newTracker()
	c := MustClient(t, url)
	m := startMember(c, "g", client.ConsumeOptions{Feed: feed, Member: "m", Secret: dead.Secret,
		OnSecret: func(string, string) { t.Error("OnSecret called for a member that exists") }}, tr.handler("m", 0))
	waitFor(t, 20*time.Second, "the restarted member handles the events", func() bool { return tr.distinct() == a.total() })
	info, err := c.GroupInfo(ctx(t), "g")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range info.Partitions {
		if p.Owner != "m" || p.Epoch != dead.Partitions[p.Partition].Epoch {
			t.Fatalf("partition %d: owner %q epoch %d, want m at %d", p.Partition, p.Owner, p.Epoch, dead.Partitions[p.Partition].Epoch)
		}
	}
	m.stop(t)
	tr.check(t, a)

	// A new member: OnSecret gives the secret its first join answered,
	// which a later process can present (here while it runs).
	got := make(chan [2]string, 1)
	n := startMember(c, "g", client.ConsumeOptions{Feed: feed, Member: "n",
		OnSecret: func(member, secret string) { got <- [2]string{member, secret} }}, tr.handler("n", 0))
	defer n.stop(t)
	var s [2]string
	select {
	case s = <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("OnSecret not called for a new member")
	}
	if s[0] != "n" || s[1] == "" {
		t.Fatalf("OnSecret(%q, %q)", s[0], s[1])
	}
	if _, err := MustClient(t, url).JoinGroup(ctx(t), "g", client.JoinOptions{Feed: feed, Member: "n", Secret: s[1]}); err != nil {
		t.Fatalf("a join with the secret OnSecret gave: %v", err)
	}
	err = MustClient(t, url).Consume(ctx(t), "g", client.ConsumeOptions{Secret: "x", Feed: feed}, tr.handler("x", 0))
	if err == nil {
		t.Fatal("Consume with a Secret but no Member: nil error")
	}
}

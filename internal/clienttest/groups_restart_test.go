package clienttest_test

import (
	"context"
	"errors"
	"testing"

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

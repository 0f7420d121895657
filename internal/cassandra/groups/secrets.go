package groups

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/cassandra/cql"
	"github.com/eventlog/eventlog/internal/log"
)

// Member secrets: the join that creates a member answers 32 random bytes
// (base64url); shard_group_members keeps only their SHA-256. A member row
// lives until its TTL (the lease TTL plus memberRowGrace after its last
// heartbeat) or until the member leaves; after that the id is free and the
// next join creates the member anew, with a new secret.

var _ log.GroupSecrets = (*Store)(nil)

func hashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

func newSecret() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// secretMatches compares in constant time.
func secretMatches(hash []byte, secret string) bool {
	return secret != "" && len(hash) == sha256.Size && subtle.ConstantTimeCompare(hash, hashSecret(secret)) == 1
}

// CheckMember implements log.GroupSecrets.
func (s *Store) CheckMember(ctx context.Context, group, member, secret string) error {
	group, err := log.ParseGroupName(group)
	if err != nil {
		return err
	}
	if member, err = log.ParseMemberID(member); err != nil {
		return err
	}
	if _, err := s.group(ctx, group, false); err != nil {
		return err
	}
	var hash []byte
	err = s.o.Session.Query(cqlMemberSecret, group, member).WithContext(ctx).Idempotent(true).Scan(&hash)
	switch {
	case errors.Is(err, gocql.ErrNotFound):
		return fmt.Errorf("member %s of group %s: %w", member, group, log.ErrNotMember)
	case err != nil:
		return cql.ReadErr("read member secret", err)
	case !secretMatches(hash, secret):
		return fmt.Errorf("member %s of group %s: %w", member, group, log.ErrMemberSecret)
	}
	return nil
}

// enter records member's heartbeat, until the given time: a member whose
// row exists must present its secret; one without a row is created (up to
// MaxMembers live members) with a new secret, which it returns. rows are
// the group's member rows as read before.
func (s *Store) enter(ctx context.Context, group, member, secret string, rows []memberRow, now, until time.Time) (string, error) {
	rowTTL := int(math.Ceil((until.Sub(now) + memberRowGrace).Seconds()))
	for _, r := range rows {
		if r.Member != member {
			continue
		}
		if !secretMatches(r.secretHash, secret) {
			return "", fmt.Errorf("member %s of group %s exists: %w", member, group, log.ErrMemberSecret)
		}
		// The TTL is per cell: the hash is written again with it. A
		// conditional write, as the row's creation is: its cells then
		// carry Cassandra's clock, not this instance's, which when ahead
		// left cells that a leave's delete, or a later creation of the
		// same member, could not replace for as long.
		applied, err := s.cas(ctx, "renew group member", cqlMemberRenew, rowTTL, until, r.secretHash, group, member, r.secretHash)
		switch {
		case err != nil:
			return "", err
		case !applied:
			// Left, expired or made anew since it was read: join again.
			return "", fmt.Errorf("member %s of group %s changed while it renewed: %w", member, group, log.ErrMemberSecret)
		}
		return "", nil
	}
	if n := len(live(rows, now)); n >= s.o.MaxMembers {
		return "", fmt.Errorf("group %s has %d live members, the most allowed: %w", group, n, log.ErrTooManyMembers)
	}
	fresh := newSecret()
	hash := hashSecret(fresh)
	var (
		applied bool
		err     error
	)
	if s.o.Fault != nil {
		err = s.o.Fault("create member")
	}
	if err == nil {
		applied, err = s.o.Session.Query(cqlMemberCreate, group, member, until, hash, rowTTL).WithContext(ctx).MapScanCAS(map[string]any{})
	}
	if err = cql.CASErr("create group member", err); errors.Is(err, log.ErrOutcomeUnknown) {
		// Settle it: the member is ours if the row holds our hash, and
		// another join's if it holds another. No row does not settle it:
		// a SERIAL read does not stop a proposal its coordinator still
		// holds, so the outcome stays unknown (it was taken for a member
		// another join had just created: 403 invalid_member_secret).
		var got []byte
		rerr := s.o.Session.Query(cqlMemberSecret, group, member).WithContext(ctx).Consistency(s.o.Serial).Scan(&got)
		if rerr == nil {
			applied, err = secretMatches(got, fresh), nil
		}
	}
	switch {
	case err != nil:
		return "", err
	case !applied:
		// Another join created it first: the secret is that join's.
		return "", fmt.Errorf("member %s of group %s was just created by another join: %w", member, group, log.ErrMemberSecret)
	}
	return fresh, nil
}

package shardstore

import (
	"context"

	"github.com/eventlog/eventlog/internal/log"
)

// Consumer groups are package groups: a group's partitions are the
// keyspace's shards, its checkpoints positions in their logs, its
// positions tokens bound to the group, member, shard and lease epoch.

var (
	_ log.GroupStore   = (*Store)(nil)
	_ log.GroupSecrets = (*Store)(nil)
	_ log.GroupDeleter = (*Store)(nil)
)

// JoinGroup implements log.GroupStore.
func (s *Store) JoinGroup(ctx context.Context, r log.JoinRequest) (log.Membership, error) {
	return s.groups.JoinGroup(ctx, r)
}

// ReadGroup implements log.GroupStore.
func (s *Store) ReadGroup(ctx context.Context, r log.GroupRead) (log.GroupPage, error) {
	return s.groups.ReadGroup(ctx, r)
}

// AckGroup implements log.GroupStore.
func (s *Store) AckGroup(ctx context.Context, group, member string, acks []log.Ack) ([]log.AckResult, error) {
	return s.groups.AckGroup(ctx, group, member, acks)
}

// LeaveGroup implements log.GroupStore.
func (s *Store) LeaveGroup(ctx context.Context, group, member string) error {
	return s.groups.LeaveGroup(ctx, group, member)
}

// DescribeGroup implements log.GroupStore.
func (s *Store) DescribeGroup(ctx context.Context, group string) (log.GroupInfo, error) {
	return s.groups.DescribeGroup(ctx, group)
}

// GroupFeed implements log.GroupStore.
func (s *Store) GroupFeed(ctx context.Context, group string) (log.Feed, error) {
	return s.groups.GroupFeed(ctx, group)
}

// CheckMember implements log.GroupSecrets.
func (s *Store) CheckMember(ctx context.Context, group, member, secret string) error {
	return s.groups.CheckMember(ctx, group, member, secret)
}

// DeleteGroup implements log.GroupDeleter.
func (s *Store) DeleteGroup(ctx context.Context, group string) error {
	return s.groups.DeleteGroup(ctx, group)
}

var _ log.GroupLister = (*Store)(nil)

// ListGroups implements log.GroupLister.
func (s *Store) ListGroups(ctx context.Context, q log.GroupQuery) (log.GroupList, error) {
	return s.groups.ListGroups(ctx, q)
}

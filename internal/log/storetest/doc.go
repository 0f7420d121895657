// Package storetest is the conformance suite of log.Store: one set of test
// bodies that every backend and every configuration of a backend runs
// (single instance, several instances sharing a keyspace, different shard
// counts, bucket and segment sizes), so a guarantee is written down once and
// checked everywhere. The idea is litestream's RunWithReplicaClient.
//
// A backend's test wires it with a Factory: given a body's Config it makes a
// fresh keyspace (or whatever isolates one body's data from another's) and
// opens the configuration's instances on it, returning them as a Cluster
// that can also restart an instance (close it and open a new one in its
// place, as after a process restart). Run then runs every body:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, cfg storetest.Config) storetest.Cluster {
//			... migrate a keyspace, return storetest.NewInstances(t, 2, open, close)
//		})
//	}
//
// The bodies check the invariants of package log (its doc, and I1–I6 of
// the team's reliability notes): acknowledged events readable exactly
// once at their versions (I1), no duplicate ids (I2), gapless versions (I3),
// atomic appends (I4), linearizable appends and head reads per stream (I5,
// with porcupine), honest conflicts (I6), monotone commit times, plus the
// API's documented behaviour (expected versions, reads, Info, snapshots,
// VersionAt, idempotent retries, bucket rollover, clock skew).
//
// Creating a Cassandra keyspace takes longer than most bodies run;
// Prepare lets a factory make the next one in the background meanwhile.
//
// Bodies treat every instance alike: with one instance, "on two instances"
// means twice on the same one. They keep their appends at most MaxAppend
// events long, so a configuration may cap events per append (and bucket
// sizes) as low as that.
//
// The package imports no driver: it sees a backend only through log.Store
// and the Factory.
package storetest

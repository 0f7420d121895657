// Package topology describes the deployment a shard-log keyspace runs in,
// for GET /v1/cluster: the live server instances (the membership table
// they heartbeat into), the shards each holds a lease on with its epoch,
// and the Cassandra nodes (system.local and system.peers of the node that
// answers, with the driver's view of each node's state). It only reads;
// ownership itself is the sequencer's.
package topology

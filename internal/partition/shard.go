package partition

import "hash/fnv"

// Shard counts: a keyspace's shard count is fixed when it is created
// (server migrate --shards) and recorded in it.
const (
	DefaultShards = 8
	MaxShards     = 1024
)

// ShardOf returns stream's shard among n: FNV-1a of the id modulo n. Every
// event of a stream is committed through its shard's log, in order.
func ShardOf(stream string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(stream))
	return int(h.Sum32() % uint32(n))
}

// Package schema embeds eventlog's CQL: the keyspace definition, the full
// current schema, and the numbered migrations the server applies.
package schema

import "embed"

// Keyspace creates the keyspace; {{keyspace}} and {{replication}} are
// substituted by the migrator.
//
//go:embed keyspace.cql
var Keyspace string

// Current is the full current schema, for reference and tests.
//
//go:embed schema.cql
var Current string

// Migrations holds migrations/NNNN_name.cql, applied in order.
//
//go:embed migrations/*.cql
var Migrations embed.FS

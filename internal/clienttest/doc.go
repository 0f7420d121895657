// Package clienttest holds the tests of the Go client (the module
// github.com/eventlog/eventlog/client, in client/) that run it against the
// real server: the HTTP API of internal/httpapi over a Cassandra store in a
// keyspace of its own. They live in the root module because the client
// module cannot import the server's internal packages, and must not depend
// on them; the client's own module keeps the tests that need no server
// (error decoding, expected versions, the examples).
//
// TestClientDependencies here checks the point of that split: the client
// module, and a module that imports it (testdata/importer), depend on the
// standard library and github.com/google/uuid only.
package clienttest

package cassandra_test

import (
	"fmt"

	"github.com/anishathalye/porcupine"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/log"
)

// The sequential specification of one stream, for porcupine: the state is
// the stream's version. The cluster tests (S3–S5) check their histories
// against it; the single-node and two-instance linearizability check is
// the conformance suite's (internal/log/storetest, TestConformance).
type (
	linAppend struct {
		expected log.ExpectedVersion
		n        int64
		ids      []uuid.UUID
	}
	linRead      struct{}
	linAppendOut struct {
		ok      bool
		first   int64 // ok
		current int64 // wrong expected version
	}
	linReadOut struct{ version int64 }
)

var streamModel = porcupine.Model{
	Init: func() any { return int64(0) },
	Step: func(state, input, output any) (bool, any) {
		v := state.(int64)
		switch in := input.(type) {
		case linRead:
			return output.(linReadOut).version == v, v
		case linAppend:
			out := output.(linAppendOut)
			if !in.expected.Matches(v) {
				return !out.ok && out.current == v, v
			}
			return out.ok && out.first == v+1, v + in.n
		}
		return false, v
	},
	DescribeOperation: func(input, output any) string {
		switch in := input.(type) {
		case linRead:
			return fmt.Sprintf("read() -> %d", output.(linReadOut).version)
		case linAppend:
			out := output.(linAppendOut)
			if out.ok {
				return fmt.Sprintf("append(%v, %d) -> ok@%d", in.expected, in.n, out.first)
			}
			return fmt.Sprintf("append(%v, %d) -> conflict(current %d)", in.expected, in.n, out.current)
		}
		return "?"
	},
}

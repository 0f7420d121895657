package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/eventlog/eventlog/internal/log"
	"github.com/labstack/echo/v5"
)

func TestProblemFor(t *testing.T) {
	driverErr := errors.New("gocql: no hosts available in the pool 10.0.0.7:9042 secret")
	for _, tc := range []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"InvalidStreamID", &log.ValidationError{Code: log.CodeInvalidStreamID, Message: "m"}, 400, "invalid_stream_id"},
		{"InvalidEvent", &log.ValidationError{Code: log.CodeInvalidEvent, Message: "m"}, 400, "invalid_event"},
		{"InvalidExpected", &log.ValidationError{Code: log.CodeInvalidExpectedVers, Message: "m"}, 400, "invalid_expected_version"},
		{"InvalidVersion", &log.ValidationError{Code: log.CodeInvalidVersion, Message: "m"}, 400, "invalid_version"},
		{"TooManyEvents", &log.ValidationError{Code: log.CodeTooManyEvents, Message: "m"}, 413, "too_many_events"},
		{"EventTooLarge", &log.ValidationError{Code: log.CodeEventTooLarge, Message: "m"}, 413, "event_too_large"},
		{"SnapshotTooLarge", &log.ValidationError{Code: log.CodeSnapshotTooLarge, Message: "m"}, 413, "snapshot_too_large"},
		{"SnapshotVersion", &log.ValidationError{Code: log.CodeSnapshotVersion, Message: "m"}, 422, "invalid_snapshot_version"},
		{"InvalidFeed", &log.ValidationError{Code: log.CodeInvalidFeed, Message: "m"}, 400, "invalid_feed"},
		{"InvalidPosition", &log.ValidationError{Code: log.CodeInvalidPosition, Message: "m"}, 400, "invalid_position"},
		{"UnknownValidationCode", &log.ValidationError{Code: "new_code", Message: "m"}, 400, "new_code"},
		{"WrappedValidation", fmt.Errorf("append: %w", &log.ValidationError{Code: log.CodeInvalidEvent}), 400, "invalid_event"},
		{"InvalidJSON", badJSON("x"), 400, "invalid_json"},
		{"BodyTooLarge", errBodyTooLarge, 413, "payload_too_large"},
		{"MaxBytes", &http.MaxBytesError{Limit: 5}, 413, "payload_too_large"},
		{"Encoding", &encodingError{err: errors.New("bad")}, 400, "invalid_encoding"},
		{"Transport", &transportError{err: errors.New("reset")}, 400, "invalid_request"},
		{"StreamNotFound", fmt.Errorf("info: %w", log.ErrStreamNotFound), 404, "stream_not_found"},
		{"StreamNotYet", fmt.Errorf("state at: %w", log.ErrStreamNotYet), 404, "stream_not_found"},
		{"SnapshotNotFound", log.ErrSnapshotNotFound, 404, "snapshot_not_found"},
		{"IdempotencyConflict", log.ErrIdempotencyConflict, 409, "idempotency_conflict"},
		{"OutcomeUnknown", fmt.Errorf("append: %w: %w", log.ErrOutcomeUnknown, driverErr), 504, "outcome_unknown"},
		{"OutcomeUnknownBeatsDeadline", fmt.Errorf("%w: %w", log.ErrOutcomeUnknown, context.DeadlineExceeded), 504, "outcome_unknown"},
		{"Unavailable", fmt.Errorf("read: %w: %w", log.ErrUnavailable, driverErr), 503, "unavailable"},
		{"Deadline", context.DeadlineExceeded, 503, "unavailable"},
		{"SnapshotCorrupt", log.ErrSnapshotCorrupt, 500, "snapshot_corrupt"},
		{"SnapshotCorruptNamed", fmt.Errorf("load: %w", &log.CorruptError{Kind: log.CorruptSnapshot, Stream: "s-1", First: 3, Last: 3, Err: log.ErrSnapshotCorrupt}), 500, "snapshot_corrupt"},
		{"DataCorrupt", fmt.Errorf("read: %w", &log.CorruptError{Kind: log.CorruptRun, Stream: "s-1", First: 1, Last: 9, Err: errors.New("record: corrupt")}), 500, "data_corrupt"},
		{"EchoNotFound", echo.ErrNotFound, 404, "not_found"},
		{"EchoMethodNotAllowed", echo.ErrMethodNotAllowed, 405, "method_not_allowed"},
		{"EchoHTTPError", echo.NewHTTPError(http.StatusUnsupportedMediaType, "x"), 415, "unsupported_media_type"},
		{"Internal", driverErr, 500, "internal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := ProblemFor(tc.err)
			if p.Status != tc.status || p.Code != tc.code {
				t.Fatalf("got %d %s, want %d %s", p.Status, p.Code, tc.status, tc.code)
			}
			if p.Type != problemTypeBase+p.Code {
				t.Fatalf("type = %q", p.Type)
			}
			if p.Title != http.StatusText(p.Status) {
				t.Fatalf("title = %q", p.Title)
			}
			b, _ := json.Marshal(p)
			if strings.Contains(string(b), "gocql") || strings.Contains(string(b), "10.0.0.7") {
				t.Fatalf("driver text leaked: %s", b)
			}
		})
	}

	t.Run("WrongExpectedVersion", func(t *testing.T) {
		p := ProblemFor(&log.WrongExpectedVersionError{Stream: "s", Expected: 3, Current: 7})
		if p.Status != 409 || p.Code != "wrong_expected_version" || p.CurrentVersion == nil || *p.CurrentVersion != 7 {
			t.Fatalf("got %+v", p)
		}
		b, _ := json.Marshal(p)
		var m map[string]any
		json.Unmarshal(b, &m)
		if m["current_version"] != float64(7) {
			t.Fatalf("current_version member = %v in %s", m["current_version"], b)
		}
	})
	t.Run("CurrentVersionZero", func(t *testing.T) {
		b, _ := json.Marshal(ProblemFor(&log.WrongExpectedVersionError{Stream: "s", Expected: log.StreamExists, Current: 0}))
		if !strings.Contains(string(b), `"current_version":0`) {
			t.Fatalf("current_version 0 must be present: %s", b)
		}
	})
}

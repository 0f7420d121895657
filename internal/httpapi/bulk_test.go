package httpapi

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestLineReader(t *testing.T) {
	long := strings.Repeat("x", 200)
	in := "a\r\n\nbb\n" + long + "\nccc\n" + long + "x" // last line unterminated and too long
	lr := newLineReader(strings.NewReader(in), 200)
	type res struct {
		line string
		err  error
	}
	var got []res
	for {
		line, err := lr.next()
		if err == io.EOF {
			break
		}
		got = append(got, res{string(line), err})
		if len(got) > 10 {
			t.Fatal("no EOF")
		}
	}
	want := []res{{"a", nil}, {"", nil}, {"bb", nil}, {long, nil}, {"ccc", nil}, {"", errLineTooLong}}
	if len(got) != len(want) {
		t.Fatalf("got %d lines %v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i].line != want[i].line || !errors.Is(got[i].err, want[i].err) {
			t.Fatalf("line %d: got %q %v, want %q %v", i, got[i].line, got[i].err, want[i].line, want[i].err)
		}
	}
}

func TestLineReaderLongerThanBuffer(t *testing.T) {
	// A line past the 64 KiB read buffer is still skipped whole.
	big := strings.Repeat("y", 200<<10)
	lr := newLineReader(strings.NewReader(big+"\nnext\n"), 100<<10)
	if _, err := lr.next(); !errors.Is(err, errLineTooLong) {
		t.Fatalf("err = %v, want errLineTooLong", err)
	}
	line, err := lr.next()
	if err != nil || string(line) != "next" {
		t.Fatalf("got %q %v, want the next line", line, err)
	}
	lr = newLineReader(strings.NewReader(big[:90<<10]+"\n"), 100<<10)
	if line, err := lr.next(); err != nil || len(line) != 90<<10 {
		t.Fatalf("got %d bytes, %v; want the 90 KiB line", len(line), err)
	}
}

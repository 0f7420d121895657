package fanout

import (
	"fmt"
	"runtime/debug"
)

// Panic is a panic recovered on one goroutine, to be raised again on the
// goroutine that waits for it.
type Panic struct {
	// Value is what the goroutine panicked with.
	Value any
	// Stack is that goroutine's stack at the panic (runtime/debug.Stack):
	// the stack of the goroutine that raises it again does not show where
	// it happened.
	Stack []byte
}

// Error reports the value and the stack: a *Panic raised again that no
// recover stops ends the process printing it, and so still says where the
// panic happened.
func (p *Panic) Error() string {
	return fmt.Sprintf("%v [recovered from another goroutine]\n\n%s", p.Value, p.Stack)
}

// Unwrap returns Value if it is an error (errors.Is(p, http.ErrAbortHandler)).
func (p *Panic) Unwrap() error {
	err, _ := p.Value.(error)
	return err
}

// Catch calls f and returns its panic, or nil when f returns. A panic
// with a *Panic (one raised again from a goroutine f waited for) is
// returned as it is: its Stack is where it happened.
func Catch(f func()) (p *Panic) {
	defer func() {
		if r := recover(); r != nil {
			if rp, ok := r.(*Panic); ok {
				p = rp
				return
			}
			p = &Panic{Value: r, Stack: debug.Stack()}
		}
	}()
	f()
	return nil
}

// Raise panics with p, if it is not nil.
func Raise(p *Panic) {
	if p != nil {
		panic(p)
	}
}

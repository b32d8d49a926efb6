package reactor

import "fmt"

// taskOp says what a posted task does. Connection operations travel as plain values rather
// than closures so AsyncWrite and Close allocate nothing beyond the copied bytes.
type taskOp uint8

const (
	opFunc   taskOp = iota // run f
	opWrite                // append data to c's output
	opClose                // Close c after flushing
	opAttach               // register c, a connection accepted on another loop
	opTLSOut               // append records a handshake worker wrote to c's ciphertext output
)

type task struct {
	op      taskOp
	counted bool // opWrite: data is counted in c's pacer (see asyncWrite)
	f       func()
	c       *Conn
	data    []byte
}

// Post runs f on the loop goroutine, after the current iteration's events and timers, in the
// order of Post calls. It is safe from any goroutine, including the loop's own (f then runs
// later in the same iteration). It returns ErrInvalidArgument for a nil f and ErrLoopClosed
// once the loop has stopped; f runs if and only if Post returns nil.
func (l *Loop) Post(f func()) error {
	if f == nil {
		return fmt.Errorf("%w: Post(nil)", ErrInvalidArgument)
	}
	return l.post(task{op: opFunc, f: f})
}

func (l *Loop) post(t task) error {
	l.mu.Lock()
	if l.tasksShut {
		l.mu.Unlock()
		return ErrLoopClosed
	}
	l.tasks = append(l.tasks, t)
	l.ntasks.Add(1)
	l.mu.Unlock()
	// See Loop.wait for the handshake: wake only a loop that may be blocked.
	if l.sleeping.Load() {
		l.pub.wakeups.Add(1)
		if err := l.poll.Wake(); err != nil && !l.stopping.Load() {
			return err
		}
	}
	return nil
}

// runTasks runs the tasks queued so far. Tasks posted while they run wait for the next
// iteration, so a task that re-posts itself cannot starve the poller.
func (l *Loop) runTasks() {
	if l.ntasks.Load() == 0 {
		return
	}
	l.mu.Lock()
	batch := l.tasks
	l.tasks = l.running[:0]
	l.ntasks.Store(0)
	l.mu.Unlock()
	for i := range batch {
		t := batch[i]
		batch[i] = task{}
		switch t.op {
		case opFunc:
			t.f()
		case opWrite:
			if t.c.flags&fClosed == 0 {
				t.c.appendOut(t.data)
			}
			if t.counted {
				t.c.asyncAppended(len(t.data))
			}
		case opClose:
			t.c.closeGracefully()
		case opAttach:
			l.addConn(t.c)
		case opTLSOut:
			t.c.appendSealed(t.data)
		}
	}
	l.running = batch[:0]
}

package http

// WriterError is what ResponseWriter.Err returns: the first error a method of the writer
// returned during one response, with the method's name.
type WriterError struct {
	// Method is the ResponseWriter method that failed, e.g. "Set".
	Method string
	// Err is the error it returned (ErrHeadersSent, ErrInvalidHeaderValue, ...).
	Err error
}

// Error returns "http: ResponseWriter.<Method>: <Err>".
func (e *WriterError) Error() string {
	return "http: ResponseWriter." + e.Method + ": " + e.Err.Error()
}

// Unwrap returns Err, so errors.Is(w.Err(), ErrHeadersSent) works.
func (e *WriterError) Unwrap() error { return e.Err }

// Err returns the first error any method of w returned since Begin, as a *WriterError naming
// the method, or nil. A handler that checks every error never needs it; an ignored one — a
// header set after the body started (ErrHeadersSent), a body longer than the declared
// Content-Length — is easy to miss, and tests use Err to catch it (package rhttptest fails the
// test). A second Finish (the server finishes a response the handler already finished) is not
// an error here. Err allocates only when there is an error to report.
func (w *ResponseWriter) Err() error {
	if w.firstErr == nil {
		return nil
	}
	return &WriterError{Method: w.firstOp, Err: w.firstErr}
}

// note records err as the response's first error (see Err) and returns it unchanged. It
// stores two words and never allocates.
func (w *ResponseWriter) note(method string, err error) error {
	if err != nil && w.firstErr == nil && !(method == "Finish" && err == ErrFinished) {
		w.firstErr, w.firstOp = err, method
	}
	return err
}

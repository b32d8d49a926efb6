package http

import (
	"fmt"
	nethttp "net/http"
	"os"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
)

// adapterRW is the http.ResponseWriter given to net/http handlers. It serializes into a codec
// ResponseWriter through that writer's methods: the job's own on a worker (output handed to the
// loop on Flush and at the end), or the loop's in Adapter.Handle.
type adapterRW struct {
	j           *job    // nil in Adapter.Handle
	wk          *worker // the worker running the handler; nil in Adapter.Handle
	w           *ResponseWriter
	log         *zap.Logger
	hdr         nethttp.Header
	keys        []string
	wroteHeader bool
	sniff       bool
	hijacked    bool
	trailers    bool // the response will carry trailer fields
	status      int
	err         error
	writeDL     time.Time
	readDL      time.Time
}

// reset prepares rw for a job's handler. The header map was emptied by release.
func (rw *adapterRW) reset(j *job, w *ResponseWriter, log *zap.Logger) {
	*rw = adapterRW{j: j, w: w, log: log, hdr: rw.hdr, keys: rw.keys[:0]}
}

// release drops references kept in a reused job between requests, and empties the header map
// (a map that grew large is dropped instead, so one response does not pin its memory).
func (rw *adapterRW) release() {
	if len(rw.hdr) > 64 {
		rw.hdr = nil
	} else if len(rw.hdr) > 0 {
		clear(rw.hdr)
	}
	clear(rw.keys)
	rw.j, rw.wk, rw.w, rw.err = nil, nil, nil, nil
}

// Header returns the header map the response will carry (http.ResponseWriter).
func (rw *adapterRW) Header() nethttp.Header {
	if rw.hdr == nil {
		rw.hdr = make(nethttp.Header)
	}
	return rw.hdr
}

// WriteHeader sends the status and the header map as it is now (http.ResponseWriter). 1xx
// codes other than 101 send an informational response at once and may repeat; 101 is kept for
// Hijack; later calls are ignored.
func (rw *adapterRW) WriteHeader(code int) {
	if rw.hijacked {
		rw.log.Debug("http: WriteHeader on a hijacked connection", zap.Int("code", code))
		return
	}
	if rw.wroteHeader {
		rw.log.Debug("http: superfluous WriteHeader call", zap.Int("code", code))
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code)) // as net/http does
	}
	w := rw.w
	if code < 200 && code != StatusSwitchingProtocols {
		rw.copyHeader(false)
		if err := w.WriteInformational(code); err == nil && rw.j != nil {
			w.hook()
		}
		return
	}
	rw.wroteHeader, rw.status = true, code
	if code == StatusSwitchingProtocols {
		return // written by Hijack (or, without one, by finish)
	}
	w.SetStatus(code)
	rw.copyHeader(false)
	_, hasType := rw.hdr["Content-Type"]
	rw.sniff = !hasType && !bodyless(code) && len(rw.hdr["Transfer-Encoding"]) == 0
	if rw.declaresTrailers() {
		rw.trailers = true
		w.expectTrailers()
	}
}

// declaresTrailers reports whether the handler announced trailer fields: a Trailer header, or
// a key with http.TrailerPrefix.
func (rw *adapterRW) declaresTrailers() bool {
	if len(rw.hdr["Trailer"]) > 0 {
		return true
	}
	for k := range rw.hdr {
		if strings.HasPrefix(k, nethttp.TrailerPrefix) {
			return true
		}
	}
	return false
}

// copyHeader replaces the codec writer's header lines with the map's, in sorted order as
// net/http sends them. Fields the codec refuses (invalid bytes, managed fields) are dropped;
// raw keeps Connection and Upgrade as they are (a 101 response).
func (rw *adapterRW) copyHeader(raw bool) {
	w := rw.w
	w.resetHeaders()
	rw.keys = rw.keys[:0]
	for k := range rw.hdr {
		rw.keys = append(rw.keys, k)
	}
	slices.Sort(rw.keys)
	for _, k := range rw.keys {
		if strings.HasPrefix(k, nethttp.TrailerPrefix) {
			continue
		}
		for _, v := range rw.hdr[k] {
			var err error
			if raw {
				err = w.addLine(k, v)
			} else {
				err = w.Add(k, v)
			}
			if err != nil {
				rw.log.Debug("http: response header dropped", zap.String("name", k), zap.Error(err))
			}
		}
	}
}

// Write writes body bytes (http.ResponseWriter).
func (rw *adapterRW) Write(p []byte) (int, error) { return adapterWrite(rw, p) }

// WriteString writes body bytes without converting s (io.StringWriter).
func (rw *adapterRW) WriteString(s string) (int, error) { return adapterWrite(rw, s) }

func adapterWrite[V string | []byte](rw *adapterRW, p V) (int, error) {
	if rw.hijacked {
		return 0, ErrHijacked
	}
	if rw.err != nil {
		return 0, rw.err
	}
	if rw.j != nil && rw.j.gone.Load() {
		return 0, ErrClientGone
	}
	if !rw.wroteHeader {
		rw.WriteHeader(nethttp.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if bodyless(rw.status) {
		return 0, nethttp.ErrBodyNotAllowed
	}
	w := rw.w
	if rw.sniff {
		rw.sniff = false
		w.Set("Content-Type", nethttp.DetectContentType([]byte(p[:min(len(p), 512)])))
	}
	n, err := writeBody(w, p)
	switch {
	case err == ErrContentLengthMismatch:
		return n, nethttp.ErrContentLength
	case err != nil:
		return n, err
	}
	if rw.j != nil && !w.Committed() && w.buffered() > adapterBufferMax {
		rw.closeIfDraining()
		w.Flush()
	}
	if rw.err != nil {
		return n, rw.err
	}
	return n, nil
}

// Flush sends what was written so far (http.Flusher).
func (rw *adapterRW) Flush() { rw.FlushError() }

// FlushError is Flush reporting ErrClientGone once the client has gone, or
// os.ErrDeadlineExceeded after the write deadline (used by http.ResponseController).
func (rw *adapterRW) FlushError() error {
	if rw.hijacked {
		return ErrHijacked
	}
	if rw.err != nil {
		return rw.err
	}
	if !rw.wroteHeader {
		rw.WriteHeader(nethttp.StatusOK)
	}
	if rw.status == StatusSwitchingProtocols {
		return nil // the 101 head leaves with Hijack
	}
	rw.closeIfDraining()
	if err := rw.w.Flush(); err != nil {
		return err
	}
	return rw.err
}

// SetWriteDeadline bounds how long later writes and flushes may wait for the client to take
// the output (http.ResponseController): past it they fail with os.ErrDeadlineExceeded and the
// connection is closed after this response. The zero time removes the bound.
func (rw *adapterRW) SetWriteDeadline(t time.Time) error {
	if rw.hijacked {
		return ErrHijacked
	}
	rw.writeDL = t
	return nil
}

// SetReadDeadline bounds reads of the request body (http.ResponseController): a Read still
// waiting for body bytes at t fails with os.ErrDeadlineExceeded. Small bodies are read whole
// before the request is dispatched and never wait.
func (rw *adapterRW) SetReadDeadline(t time.Time) error {
	if rw.hijacked {
		return ErrHijacked
	}
	rw.readDL = t
	if rw.j != nil && rw.j.pipe != nil {
		rw.j.pipe.setReadDeadline(t)
	}
	return nil
}

// EnableFullDuplex lets the handler read the body while writing the response
// (http.ResponseController). Always allowed here: reading and writing are independent.
func (rw *adapterRW) EnableFullDuplex() error {
	if rw.hijacked {
		return ErrHijacked
	}
	return nil
}

// emit is the job writer's flush hook, on the worker: hand a copy of out to the loop and wait
// until the loop has taken it (see job.onSegment for when that is).
func (rw *adapterRW) emit(out []byte) {
	j := rw.j
	if j == nil || rw.err != nil {
		return
	}
	if j.gone.Load() {
		rw.err = ErrClientGone
		return
	}
	seg := append([]byte(nil), out...)
	j.segq.Add(1)
	if err := j.loop.Post(func() { j.onSegment(seg) }); err != nil {
		j.segq.Add(-1)
		rw.err = ErrClientGone
		return
	}
	if rw.writeDL.IsZero() {
		<-j.ack
	} else {
		t := time.NewTimer(time.Until(rw.writeDL))
		select {
		case <-j.ack:
			t.Stop()
		case <-t.C:
			// The client does not read: fail this response and close the connection after
			// it. The segment was accepted by the loop and stays in order; the ack left
			// outstanding is drained when the job is released.
			rw.err = os.ErrDeadlineExceeded
			rw.w.SetClose()
			j.gone.Store(true)
			return
		}
	}
	if j.gone.Load() {
		rw.err = ErrClientGone
	}
}

// finish completes the response after the handler returned.
func (rw *adapterRW) finish(panicked bool) {
	w := rw.w
	w.SetFlushHook(nil)
	if rw.hijacked {
		return
	}
	if panicked {
		w.abort(ErrHandlerPanic, rw.errorAppender())
		if rw.j != nil {
			rw.j.err = ErrHandlerPanic
		}
		return
	}
	if !rw.wroteHeader {
		rw.WriteHeader(nethttp.StatusOK)
	}
	if rw.status == StatusSwitchingProtocols {
		// 101 without Hijack: send it, then close (there is no protocol to switch to).
		rw.copyHeader(true)
		if w.commitSwitching(false) != nil {
			w.abort(ErrHandlerPanic, rw.errorAppender())
		}
		return
	}
	rw.closeIfDraining()
	if rw.trailers {
		rw.addTrailers()
	}
	w.Finish()
}

// addTrailers hands the trailer values to the writer: the fields named in the Trailer header
// and every http.TrailerPrefix key, as net/http does.
func (rw *adapterRW) addTrailers() {
	w := rw.w
	for _, v := range rw.hdr["Trailer"] {
		for name := range strings.SplitSeq(v, ",") {
			name = nethttp.CanonicalHeaderKey(strings.TrimSpace(name))
			for _, tv := range rw.hdr[name] {
				if err := w.AddTrailer(name, tv); err != nil {
					rw.log.Debug("http: response trailer dropped", zap.String("name", name), zap.Error(err))
				}
			}
		}
	}
	for k, vs := range rw.hdr {
		if name, ok := strings.CutPrefix(k, nethttp.TrailerPrefix); ok {
			for _, tv := range vs {
				if err := w.AddTrailer(name, tv); err != nil {
					rw.log.Debug("http: response trailer dropped", zap.String("name", name), zap.Error(err))
				}
			}
		}
	}
}

// errorAppender returns the server's error-response maker (with its WithErrorBody hook), or
// nil (AppendError) in Adapter.Handle.
func (rw *adapterRW) errorAppender() errorAppender {
	if rw.j == nil {
		return nil
	}
	cfg := &rw.j.srv.cfg
	return func(dst []byte, err error, date []byte) []byte { return cfg.appendError(dst, err, date, nil) }
}

// closeIfDraining makes a response whose head is not yet written the connection's last when
// the server is shutting down.
func (rw *adapterRW) closeIfDraining() {
	if rw.j != nil && !rw.w.Committed() && rw.j.srv.draining.Load() {
		rw.w.SetClose()
	}
}

//go:build linux

package hardening_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reactord/reactord/internal/testsupport"
)

// dial connects to addr over loopback TCP.
func dial(addr string) (*net.TCPConn, error) {
	c, err := net.DialTimeout("tcp", addr, testsupport.Scale(5*time.Second))
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// fetch sends one GET with "Connection: close" on a new connection and returns the status
// and body.
func fetch(addr, path string) (int, []byte, error) {
	c, err := dial(addr)
	if err != nil {
		return 0, nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(testsupport.Deadline(10 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n", path); err != nil {
		return 0, nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// readToClose reads until the peer closes the connection (EOF or a reset) or the deadline
// passes. closed reports whether the connection ended; a reset after the data counts as
// closed (the daemon closed with unread input, so the kernel sent RST instead of FIN).
func readToClose(c net.Conn, deadline time.Time) (data []byte, closed bool, err error) {
	_ = c.SetReadDeadline(deadline)
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		data = append(data, buf[:n]...)
		switch {
		case err == nil:
		case isClosedErr(err):
			return data, true, nil
		case errors.Is(err, os.ErrDeadlineExceeded):
			return data, false, nil
		default:
			return data, false, err
		}
	}
}

// response is one parsed HTTP response.
type response struct {
	status int
	header http.Header
	body   []byte
	close  bool // "Connection: close"
}

// parseResponses splits a byte stream into the HTTP/1.1 responses it holds. Any bytes that
// are not a complete response are an error: the stream must be exactly N responses.
func parseResponses(data []byte) ([]response, error) {
	var out []response
	br := bufio.NewReader(bytes.NewReader(data))
	for {
		if _, err := br.Peek(1); err == io.EOF {
			return out, nil
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return out, fmt.Errorf("response %d: %w", len(out)+1, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return out, fmt.Errorf("response %d body: %w", len(out)+1, err)
		}
		out = append(out, response{status: resp.StatusCode, header: resp.Header, body: body, close: resp.Close})
	}
}

// roundTrip sends one request on a keep-alive connection and reads its response.
func roundTrip(c net.Conn, br *bufio.Reader, req string) (*http.Response, []byte, error) {
	if _, err := io.WriteString(c, req); err != nil {
		return nil, nil, err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, body, err
}

// getReq is a keep-alive GET of path.
func getReq(path string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: test\r\n\r\n"
}

// percentile returns the p-th percentile (0..100) of ds by nearest rank; ds is sorted.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(float64(len(ds))*p/100+0.5) - 1
	return ds[max(0, min(i, len(ds)-1))]
}

// isClosedErr reports whether a read error means the peer closed the connection: EOF, or a
// reset (a close with unread input makes the kernel send RST instead of FIN).
func isClosedErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, unix.ECONNRESET)
}

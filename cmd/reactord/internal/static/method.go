package static

// AllowedMethods is the value of the Allow header: the methods every resource the daemon
// serves supports. 405 responses and successful OPTIONS responses carry it.
const AllowedMethods = "GET, HEAD, OPTIONS"

// knownMethods are the methods the daemon recognises but no resource allows: the rest of
// RFC 9110 §9's standard methods, and PATCH (RFC 5789), which clients send often enough that
// "not allowed here" is the useful answer. Any other method, WebDAV's PROPFIND included, is
// one the daemon does not implement at all.
var knownMethods = [...]string{"POST", "PUT", "DELETE", "CONNECT", "TRACE", "PATCH"}

// CheckMethod sorts a request method (case-sensitive, RFC 9110 §9.1). For GET, HEAD and
// OPTIONS it returns ok true and a zero Response. For a method the daemon recognises but does
// not allow on any resource (POST, PUT, DELETE, CONNECT, TRACE, PATCH) the answer is 405
// with Allow (RFC 9110 §15.5.6); for any other method, lower-case "get" included, it is 501
// Not Implemented (§15.6.2), the status for a method the server does not recognise. Neither
// answer looks at the target, so a refused method reveals nothing about the file tree.
func CheckMethod(method string) (resp Response, ok bool) {
	switch method {
	case "GET", "HEAD", "OPTIONS":
		return Response{}, true
	}
	for _, m := range knownMethods {
		if method == m {
			return errorResponse(405, false, Field{"Allow", AllowedMethods}), false
		}
	}
	return errorResponse(501, false), false
}

// OptionsResponse is the answer to a successful OPTIONS request: 200 with Allow and an empty
// body (RFC 9110 §9.3.7 requires "Content-Length: 0" when there is no content). It is also
// the answer to "OPTIONS *", which asks about the server as a whole.
func OptionsResponse() Response {
	return Response{Status: 200, Header: []Field{{"Allow", AllowedMethods}}, ContentLength: 0}
}

package http

import "strconv"

// Status codes registered in the IANA HTTP Status Code Registry
// (https://www.iana.org/assignments/http-status-codes), permanent registrations only.
const (
	StatusContinue           = 100 // RFC 9110 §15.2.1
	StatusSwitchingProtocols = 101 // RFC 9110 §15.2.2
	StatusProcessing         = 102 // RFC 2518
	StatusEarlyHints         = 103 // RFC 8297

	StatusOK                   = 200 // RFC 9110 §15.3.1
	StatusCreated              = 201
	StatusAccepted             = 202
	StatusNonAuthoritativeInfo = 203
	StatusNoContent            = 204
	StatusResetContent         = 205
	StatusPartialContent       = 206
	StatusMultiStatus          = 207 // RFC 4918
	StatusAlreadyReported      = 208 // RFC 5842
	StatusIMUsed               = 226 // RFC 3229

	StatusMultipleChoices   = 300 // RFC 9110 §15.4.1
	StatusMovedPermanently  = 301
	StatusFound             = 302
	StatusSeeOther          = 303
	StatusNotModified       = 304
	StatusUseProxy          = 305
	StatusUnused306         = 306 // registered as "(Unused)"
	StatusTemporaryRedirect = 307
	StatusPermanentRedirect = 308

	StatusBadRequest                    = 400 // RFC 9110 §15.5.1
	StatusUnauthorized                  = 401
	StatusPaymentRequired               = 402
	StatusForbidden                     = 403
	StatusNotFound                      = 404
	StatusMethodNotAllowed              = 405
	StatusNotAcceptable                 = 406
	StatusProxyAuthRequired             = 407
	StatusRequestTimeout                = 408
	StatusConflict                      = 409
	StatusGone                          = 410
	StatusLengthRequired                = 411
	StatusPreconditionFailed            = 412
	StatusContentTooLarge               = 413
	StatusURITooLong                    = 414
	StatusUnsupportedMediaType          = 415
	StatusRangeNotSatisfiable           = 416
	StatusExpectationFailed             = 417
	StatusUnused418                     = 418 // registered as "(Unused)"
	StatusMisdirectedRequest            = 421
	StatusUnprocessableContent          = 422
	StatusLocked                        = 423 // RFC 4918
	StatusFailedDependency              = 424 // RFC 4918
	StatusTooEarly                      = 425 // RFC 8470
	StatusUpgradeRequired               = 426
	StatusPreconditionRequired          = 428 // RFC 6585
	StatusTooManyRequests               = 429 // RFC 6585
	StatusRequestHeaderFieldsTooLarge   = 431 // RFC 6585
	StatusUnavailableForLegalReasons    = 451 // RFC 7725
	StatusInternalServerError           = 500 // RFC 9110 §15.6.1
	StatusNotImplemented                = 501
	StatusBadGateway                    = 502
	StatusServiceUnavailable            = 503
	StatusGatewayTimeout                = 504
	StatusHTTPVersionNotSupported       = 505
	StatusVariantAlsoNegotiates         = 506 // RFC 2295
	StatusInsufficientStorage           = 507 // RFC 4918
	StatusLoopDetected                  = 508 // RFC 5842
	StatusNotExtended                   = 510 // RFC 2774 (obsoleted, still registered)
	StatusNetworkAuthenticationRequired = 511 // RFC 6585
)

var statusText = map[int]string{
	100: "Continue",
	101: "Switching Protocols",
	102: "Processing",
	103: "Early Hints",

	200: "OK",
	201: "Created",
	202: "Accepted",
	203: "Non-Authoritative Information",
	204: "No Content",
	205: "Reset Content",
	206: "Partial Content",
	207: "Multi-Status",
	208: "Already Reported",
	226: "IM Used",

	300: "Multiple Choices",
	301: "Moved Permanently",
	302: "Found",
	303: "See Other",
	304: "Not Modified",
	305: "Use Proxy",
	306: "(Unused)",
	307: "Temporary Redirect",
	308: "Permanent Redirect",

	400: "Bad Request",
	401: "Unauthorized",
	402: "Payment Required",
	403: "Forbidden",
	404: "Not Found",
	405: "Method Not Allowed",
	406: "Not Acceptable",
	407: "Proxy Authentication Required",
	408: "Request Timeout",
	409: "Conflict",
	410: "Gone",
	411: "Length Required",
	412: "Precondition Failed",
	413: "Content Too Large",
	414: "URI Too Long",
	415: "Unsupported Media Type",
	416: "Range Not Satisfiable",
	417: "Expectation Failed",
	418: "(Unused)",
	421: "Misdirected Request",
	422: "Unprocessable Content",
	423: "Locked",
	424: "Failed Dependency",
	425: "Too Early",
	426: "Upgrade Required",
	428: "Precondition Required",
	429: "Too Many Requests",
	431: "Request Header Fields Too Large",
	451: "Unavailable For Legal Reasons",

	500: "Internal Server Error",
	501: "Not Implemented",
	502: "Bad Gateway",
	503: "Service Unavailable",
	504: "Gateway Timeout",
	505: "HTTP Version Not Supported",
	506: "Variant Also Negotiates",
	507: "Insufficient Storage",
	508: "Loop Detected",
	510: "Not Extended",
	511: "Network Authentication Required",
}

// statusLines holds the precomputed "HTTP/1.1 NNN Reason\r\n" for every code 100..999 so that
// writing a status line is one append. Unregistered codes get an empty reason phrase, which
// RFC 9112 §4 allows ("HTTP/1.1 299 \r\n").
var statusLines [1000]string

func init() {
	for code := 100; code < 1000; code++ {
		statusLines[code] = "HTTP/1.1 " + strconv.Itoa(code) + " " + statusText[code] + "\r\n"
	}
}

// StatusText returns the registered reason phrase for code, or "" if code is not registered.
// Safe for concurrent use.
func StatusText(code int) string { return statusText[code] }

// appendStatusLine appends the status line for code (which must be in 100..999).
func appendStatusLine(dst []byte, code int) []byte {
	return append(dst, statusLines[code]...)
}

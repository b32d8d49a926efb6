// Package routerbench measures reactord's router (codec/http/router) against peers on the
// same GitHub-API-shaped route table (internal/routetable), at two levels:
//
//   - BenchmarkLookup: the route lookup alone — router.Router.Lookup, fasthttp/router's
//     Router.Lookup, chi's Mux.Find and http.ServeMux.Handler;
//   - BenchmarkRequest: one whole request in memory — parse, route, run a handler that writes
//     "ok" with the matched parameter, serialize the response — for the router on the native
//     codec, fasthttp/router on fasthttp, and chi and http.ServeMux through the codec's net/http
//     adapter (Adapter.Handle, i.e. without the worker-pool hand-off a Server adds).
//
// The peers live here, in the bench module, so they never enter the main module's go.mod:
//
//	cd bench && go test -run '^$' -bench . -benchmem ./internal/routerbench/
//
// The package has no non-test code.
package routerbench

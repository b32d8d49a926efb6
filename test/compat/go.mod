module github.com/reactord/reactord/test/compat

go 1.26.0

replace github.com/reactord/reactord => ../../

require (
	github.com/coder/websocket v1.8.15
	github.com/gorilla/websocket v1.5.3
	github.com/reactord/reactord v0.0.0-00010101000000-000000000000
	go.uber.org/goleak v1.3.0
)

require (
	go.uber.org/multierr v1.10.0 // indirect
	go.uber.org/zap v1.28.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)

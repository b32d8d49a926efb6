package static

import (
	"mime"
	"path"
	"strings"
)

// builtinTypes answers the most common web extensions the same way on every host. It is
// consulted first because mime.TypeByExtension merges the host's /etc/mime.types, which
// differ between distributions (text/javascript vs application/javascript, missing .wasm
// or .avif in minimal images): replicas behind one load balancer must agree.
var builtinTypes = map[string]string{
	".html":  "text/html; charset=utf-8",
	".htm":   "text/html; charset=utf-8",
	".css":   "text/css; charset=utf-8",
	".js":    "text/javascript; charset=utf-8",
	".mjs":   "text/javascript; charset=utf-8",
	".json":  "application/json",
	".map":   "application/json",
	".txt":   "text/plain; charset=utf-8",
	".md":    "text/markdown; charset=utf-8",
	".csv":   "text/csv; charset=utf-8",
	".xml":   "text/xml; charset=utf-8",
	".svg":   "image/svg+xml",
	".png":   "image/png",
	".jpg":   "image/jpeg",
	".jpeg":  "image/jpeg",
	".gif":   "image/gif",
	".webp":  "image/webp",
	".avif":  "image/avif",
	".ico":   "image/vnd.microsoft.icon",
	".woff":  "font/woff",
	".woff2": "font/woff2",
	".ttf":   "font/ttf",
	".otf":   "font/otf",
	".wasm":  "application/wasm",
	".pdf":   "application/pdf",
	".zip":   "application/zip",
	".gz":    "application/gzip",
	".tar":   "application/x-tar",
	".mp4":   "video/mp4",
	".webm":  "video/webm",
	".mp3":   "audio/mpeg",
	".ogg":   "audio/ogg",
}

// defaultType is sent for extensions nobody knows; browsers then offer a download rather
// than guessing (we send nosniff with errors, and never sniff content ourselves).
const defaultType = "application/octet-stream"

// ContentType returns the media type for a file name, by extension only (case-insensitive):
// the built-in table, then mime.TypeByExtension, then application/octet-stream.
func ContentType(name string) string {
	ext := strings.ToLower(path.Ext(name))
	if ext == "" {
		return defaultType
	}
	if t, ok := builtinTypes[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return defaultType
}

// Package static holds the hosted pages' stylesheet. The server serves FS
// under /static/; the templates link to it with a content hash in the query
// so it may be cached for a long time.
package static

import "embed"

// FS holds style.css and passkey.js (the WebAuthn ceremonies).
//
//go:embed *.css *.js
var FS embed.FS

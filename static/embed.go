// Package static holds the hosted pages' stylesheet. The server serves FS
// under /static/; the templates link to it with a content hash in the query
// so it may be cached for a long time.
package static

import "embed"

// FS holds style.css.
//
//go:embed *.css
var FS embed.FS

package op

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// firstRead records the size of the buffer the first Read is given and
// then fails, as a client that announced a body and sent nothing yet.
type firstRead struct{ size int }

func (f *firstRead) Read(p []byte) (int, error) {
	if f.size < 0 {
		f.size = len(p)
	}
	return 0, io.ErrUnexpectedEOF
}

// A body's announced length is not memory the server commits before the
// body arrives: a client (no authentication yet) announcing
// MaxBodyBytes on many connections and sending nothing would otherwise
// hold 64 KiB of heap per connection for the server's whole read
// timeout, where net/http's ParseForm grows its buffer with what
// arrives. The shape of a token request's body (well under
// formPrealloc) is still read in one allocation.
func TestParseFormDoesNotTrustContentLength(t *testing.T) {
	for _, announced := range []int64{MaxBodyBytes, MaxBodyBytes / 2, 300} {
		body := &firstRead{size: -1}
		r := httptest.NewRequest(http.MethodPost, "/oauth/token", body)
		r.Header.Set("Content-Type", formContentType)
		r.ContentLength = announced
		if err := parseForm(r); err == nil {
			t.Fatal("a body that failed to read parsed")
		}
		if max := int(min(announced+1, formPrealloc)); body.size > max {
			t.Errorf("Content-Length %d: %d bytes committed before the first byte arrived, want at most %d", announced, body.size, max)
		}
	}
}

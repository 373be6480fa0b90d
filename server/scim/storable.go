package scim

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/stepup-dev/stepup/account"
)

// A value account.Storable refuses (PostgreSQL's text takes no NUL and
// no invalid UTF-8) reached the database from SCIM and came back as a
// store failure (503, EventStoreDown) where SQLite stored it. Every SCIM
// client now gets the same answer on both databases: 400 for a body or
// filter that holds one, 404 for such an id (no user has it).

// errUnstorable is the 400 invalidValue of a body with a NUL character.
var errUnstorable = errors.New("a string holds the character U+0000, which no attribute can take")

// checkStrings returns errUnstorable when any JSON string in b (member
// names too) holds a NUL character. encoding/json turns invalid UTF-8
// into U+FFFD as it decodes, so NUL (written \u0000) is the one
// character a well-formed body can carry that the database cannot
// store. A body that is not JSON is left to the parser's own error.
func checkStrings(b []byte) error {
	if !bytes.Contains(b, []byte(`\u0000`)) {
		return nil // the only way JSON writes NUL is that escape
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		t, err := dec.Token()
		if err != nil { // the end, or not JSON: the parser answers that
			return nil
		}
		if s, ok := t.(string); ok && strings.IndexByte(s, 0) >= 0 {
			return errUnstorable
		}
	}
}

// pathID is the request's {id}; for one no user can have it answers 404,
// as for an unknown user, and reports false.
func pathID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if !account.Storable(id) {
		fail(w, http.StatusNotFound, "", "no such user")
		return "", false
	}
	return id, true
}

package scim

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"
)

// storable reports whether a text value can be an attribute's or an
// id's: valid UTF-8 without a NUL byte. PostgreSQL's text refuses both,
// so without this check such a value reached the database and came back
// as a store failure (503, EventStoreDown) where SQLite answered; every
// SCIM client now gets the same answer on both databases: 400 for a
// body or filter that holds one, 404 for such an id (no user has it).
func storable(v string) bool {
	return utf8.ValidString(v) && strings.IndexByte(v, 0) < 0
}

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
		if err == io.EOF {
			return nil
		}
		if err != nil {
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
	if !storable(id) {
		fail(w, http.StatusNotFound, "", "no such user")
		return "", false
	}
	return id, true
}

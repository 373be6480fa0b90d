package server_test

import (
	"net/http"
	"net/url"
	"testing"
)

// A username no account can hold (a NUL byte, invalid UTF-8) is an
// unknown user: 401 like any other, on PostgreSQL as on SQLite. On
// PostgreSQL the lookup failed in the database (its text refuses both),
// so anyone could make the login form answer 503 and report the store
// down (EventStoreDown) at will.
func TestUnstorableUsernameIsAnUnknownUser(t *testing.T) {
	e := newEnv(t, nil)
	r := e.rp("spa", "")
	for _, user := range []string{"alice\x00", "\xff\xfe"} {
		b := e.browser()
		a := r.authURL(nil)
		p := b.login(b.get(a.url), user, "wrong password")
		if p.status != http.StatusUnauthorized {
			t.Errorf("sign-in as %q: status %d, want 401", user, p.status)
		}
	}
}

// SCIM answers a value no account can hold the same on both databases:
// 400 invalidValue for a body with a NUL character, 400 invalidFilter
// for a filter with one, 404 for such an id, and nothing is written. On
// PostgreSQL each reached the database and came back as 503 (store
// down); on SQLite the create stored a userName with a NUL in it.
func TestSCIMUnstorableValues(t *testing.T) {
	e := scimEnv(t)
	tok := e.ccToken("bank", bankSecret, "stepup:scim")
	const user = `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"nul\u0000user"}`
	e.scim("POST", "/Users", tok, user).wantSCIM(t, "create with a NUL userName", 400, "invalidValue")
	e.scim("POST", "/Users", tok, `{"userName":"nuluser","name":{"givenName":"a\u0000"}}`).wantSCIM(t, "create with a NUL in a nested value", 400, "invalidValue")
	e.scim("GET", "/Users?filter="+url.QueryEscape(`userName eq "nul`+"\x00"+`user"`), tok, "").wantSCIM(t, "filter with a NUL", 400, "invalidFilter")
	// Invalid UTF-8 in a filter's string is read as U+FFFD, which a
	// userName may hold: an empty list, not a store failure.
	e.scim("GET", "/Users?filter="+url.QueryEscape(`userName eq "`+"\xff"+`"`), tok, "").wantSCIM(t, "filter with invalid UTF-8", 200, "")
	for _, m := range []string{"GET", "DELETE"} {
		e.scim(m, "/Users/%00", tok, "").wantSCIM(t, m+" of a NUL id", 404, "")
	}
	e.scim("PUT", "/Users/%00", tok, `{"userName":"nuluser"}`).wantSCIM(t, "PUT of a NUL id", 404, "")
	id := e.scim("POST", "/Users", tok, `{"userName":"nuluser"}`).wantSCIM(t, "create", 201, "").str("id")
	e.scim("PATCH", "/Users/"+id, tok, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"op":"replace","path":"userName","value":"x\u0000"}]}`).wantSCIM(t, "PATCH to a NUL userName", 400, "invalidValue")
	// A backslash before "u0000" is text, not a NUL: it is taken.
	e.scim("PATCH", "/Users/"+id, tok, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"op":"replace","path":"displayName","value":"a\\u0000b"}]}`).wantSCIM(t, "PATCH with an escaped backslash", 200, "")
	got := e.scim("GET", "/Users/"+id, tok, "").wantSCIM(t, "get", 200, "")
	if got.str("userName") != "nuluser" {
		t.Fatalf("userName after the refused PATCH: %q", got.str("userName"))
	}
	list := e.scim("GET", "/Users?filter="+url.QueryEscape(`userName eq "nuluser"`), tok, "").wantSCIM(t, "list", 200, "")
	if n, _ := list.body["totalResults"].(float64); n != 1 {
		t.Fatalf("users named nuluser: %v, want 1 (the refused create wrote nothing)", list.body["totalResults"])
	}
}

package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stepup-dev/stepup/config"
)

const scimErrorSchema = "urn:ietf:params:scim:api:messages:2.0:Error"

// scimEnv: bank may use SCIM (and the admin API); floor has
// client_credentials without the scope.
func scimEnv(t *testing.T) *env {
	return newEnv(t, func(c *config.Config) {
		for i := range c.Clients {
			if c.Clients[i].ID == "bank" {
				c.Clients[i].Scopes = []string{"stepup:grants", "stepup:admin", "stepup:scim"}
			}
			if c.Clients[i].ID == "floor" {
				c.Clients[i].GrantTypes = []string{"authorization_code", "client_credentials"}
			}
		}
	})
}

// scim calls /scim/v2/… with a bearer token and a raw JSON body.
func (e *env) scim(method, path, token, body string, header ...string) apiResp {
	e.t.Helper()
	req, _ := http.NewRequestWithContext(withTest(context.Background(), e.t), method, e.issuer+"/scim/v2"+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/scim+json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	out := apiResp{status: resp.StatusCode, header: resp.Header}
	_ = json.NewDecoder(resp.Body).Decode(&out.body)
	if resp.StatusCode != http.StatusNoContent {
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/scim+json") {
			e.t.Errorf("%s %s: Content-Type %q, want application/scim+json", method, path, ct)
		}
	}
	return out
}

// wantSCIM checks the status and, for an error, the SCIM error object
// (schemas, status as a string, scimType when given).
func (a apiResp) wantSCIM(t *testing.T, what string, status int, scimType string) apiResp {
	t.Helper()
	if a.status != status {
		t.Fatalf("%s: %d %v, want %d", what, a.status, a.body, status)
	}
	if status >= 400 {
		s, _ := a.body["schemas"].([]any)
		if len(s) != 1 || s[0] != scimErrorSchema || a.str("status") != itoa(status) || a.str("detail") == "" {
			t.Fatalf("%s: %v, not a SCIM error object with status %q", what, a.body, itoa(status))
		}
		if scimType != "" && a.str("scimType") != scimType {
			t.Fatalf("%s: scimType %q, want %q (%v)", what, a.str("scimType"), scimType, a.body)
		}
	}
	return a
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func resources(t *testing.T, a apiResp) []map[string]any {
	t.Helper()
	rs, ok := a.body["Resources"].([]any)
	if !ok {
		t.Fatalf("no Resources in %v", a.body)
	}
	var out []map[string]any
	for _, r := range rs {
		out = append(out, r.(map[string]any))
	}
	return out
}

// PRODUCT.md §10: SCIM takes only a client_credentials token of a client
// with scope stepup:scim; the rest is 401 or 403 as SCIM errors.
func TestSCIMAuth(t *testing.T) {
	e := scimEnv(t)
	e.scim("GET", "/Users", "", "").wantSCIM(t, "no token", 401, "")
	e.scim("GET", "/Users", "not-a-token", "").wantSCIM(t, "a bad token", 401, "")
	e.scim("GET", "/Users", e.ccToken("floor", bankSecret, ""), "").wantSCIM(t, "a client without the scope", 403, "")
	e.scim("GET", "/Users", e.ccToken("bank", bankSecret, "stepup:admin"), "").wantSCIM(t, "a token without the scope", 403, "")
	b, r := e.browser(), e.rp("spa", "")
	user := signIn(t, e, b, r, map[string]string{"scope": "openid stepup:scim"}, "bob", bobPass)
	e.scim("GET", "/Users", user.tok.AccessToken, "").wantSCIM(t, "a user's token", 403, "")
	tok := e.ccToken("bank", bankSecret, "stepup:scim")
	for _, p := range []string{"/Users", "/ServiceProviderConfig", "/Schemas", "/ResourceTypes"} {
		e.scim("GET", p, tok, "").wantSCIM(t, p, 200, "")
	}
}

// Microsoft Entra ID's provisioning: look the user up by userName,
// create, update with its capitalised "Replace"/"Add" ops and filter
// paths, disable with the string "False" (which ends the user's tokens
// at once), delete.
func TestSCIMEntraProvisioning(t *testing.T) {
	e := scimEnv(t)
	tok := e.ccToken("bank", bankSecret, "stepup:scim")
	q := "/Users?filter=" + url.QueryEscape(`userName eq "Carol@Contoso.com"`)
	if l := e.scim("GET", q, tok, "").wantSCIM(t, "lookup before", 200, ""); l.body["totalResults"] != 0.0 || len(resources(t, l)) != 0 {
		t.Fatalf("lookup of an unknown user: %v", l.body)
	}
	created := e.scim("POST", "/Users", tok, `{
		"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
		"externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
		"userName": "Carol@Contoso.com",
		"active": true,
		"displayName": "Carol Contoso",
		"emails": [{"primary": true, "type": "work", "value": "carol@contoso.com"}],
		"meta": {"resourceType": "User"},
		"name": {"familyName": "Contoso", "givenName": "Carol"},
		"password": "correct horse battery staple",
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Sales"}
	}`).wantSCIM(t, "create", 201, "")
	id := created.str("id")
	meta, _ := created.body["meta"].(map[string]any)
	if id == "" || created.header.Get("Location") != e.issuer+"/scim/v2/Users/"+id || meta["location"] != created.header.Get("Location") ||
		created.header.Get("ETag") == "" || meta["version"] != created.header.Get("ETag") || meta["resourceType"] != "User" ||
		meta["created"] == nil || meta["lastModified"] == nil {
		t.Fatalf("create: headers %v body %v", created.header, created.body)
	}
	if created.str("displayName") != "Carol Contoso" || created.body["active"] != true || created.body["password"] != nil {
		t.Fatalf("create: %v", created.body)
	}
	l := e.scim("GET", "/Users?filter="+url.QueryEscape(`userName eq "carol@contoso.com"`), tok, "").wantSCIM(t, "lookup", 200, "")
	if rs := resources(t, l); l.body["totalResults"] != 1.0 || len(rs) != 1 || rs[0]["id"] != id {
		t.Fatalf("lookup ignoring case: %v", l.body)
	}

	b, r := e.browser(), e.rp("spa", "")
	tk := signIn(t, e, b, r, map[string]string{"scope": "openid profile offline_access"}, "Carol@Contoso.com", "correct horse battery staple")

	e.scim("PATCH", "/Users/"+id, tok, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
		{"op":"Replace","path":"displayName","value":"Carol C. Contoso"},
		{"op":"Add","path":"emails[type eq \"work\"].value","value":"carol.c@contoso.com"},
		{"op":"Replace","path":"externalId","value":"ext-2"}]}`).wantSCIM(t, "patch attributes", 200, "")
	got := e.scim("GET", "/Users/"+id, tok, "").wantSCIM(t, "get", 200, "")
	emails, _ := got.body["emails"].([]any)
	if got.str("displayName") != "Carol C. Contoso" || got.str("externalId") != "ext-2" || len(emails) != 1 ||
		emails[0].(map[string]any)["value"] != "carol.c@contoso.com" || got.body["active"] != true {
		t.Fatalf("after the patch: %v", got.body)
	}
	wantTokensLive(t, e, "tokens after a profile patch", tk)

	e.scim("PATCH", "/Users/"+id, tok, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
		{"op":"Replace","path":"active","value":"False"}]}`).wantSCIM(t, "disable", 200, "")
	wantTokensEnded(t, e, "tokens after active False", tk)
	if got := e.scim("GET", "/Users/"+id, tok, ""); got.body["active"] != false {
		t.Fatalf("after active False: %v", got.body)
	}
	l = e.scim("GET", "/Users?filter="+url.QueryEscape(`externalId eq "ext-2" and active eq false`), tok, "").wantSCIM(t, "inactive", 200, "")
	if l.body["totalResults"] != 1.0 {
		t.Fatalf("filter externalId and active: %v", l.body)
	}

	e.scim("DELETE", "/Users/"+id, tok, "").wantSCIM(t, "delete", 204, "")
	e.scim("GET", "/Users/"+id, tok, "").wantSCIM(t, "get after delete", 404, "")
	e.scim("DELETE", "/Users/"+id, tok, "").wantSCIM(t, "delete again", 404, "")
}

// Okta's provisioning: lookup with startIndex and count, create, PUT
// the whole user, PATCH active false without a path, delete.
func TestSCIMOktaProvisioning(t *testing.T) {
	e := scimEnv(t)
	tok := e.ccToken("bank", bankSecret, "stepup:scim")
	q := "/Users?filter=" + url.QueryEscape(`userName eq "dave@example.org"`) + "&startIndex=1&count=100"
	e.scim("GET", q, tok, "").wantSCIM(t, "lookup before", 200, "")
	created := e.scim("POST", "/Users", tok, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
		"userName":"dave@example.org","name":{"givenName":"Dave","familyName":"Doe"},
		"emails":[{"primary":true,"value":"dave@example.org","type":"work"}],
		"displayName":"Dave Doe","locale":"en-US","externalId":"00u1","groups":[],
		"password":"Dave's long passphrase 1","active":true}`).wantSCIM(t, "create", 201, "")
	id := created.str("id")
	l := e.scim("GET", "/Users?filter="+url.QueryEscape(`emails.value eq "DAVE@example.org"`), tok, "").wantSCIM(t, "by email", 200, "")
	if rs := resources(t, l); len(rs) != 1 || rs[0]["id"] != id {
		t.Fatalf("filter by emails.value: %v", l.body)
	}
	b, r := e.browser(), e.rp("spa", "")
	tk := signIn(t, e, b, r, map[string]string{"scope": "openid profile offline_access"}, "dave@example.org", "Dave's long passphrase 1")

	put := e.scim("PUT", "/Users/"+id, tok, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"`+id+`",
		"userName":"dave@example.org","name":{"formatted":"David Doe"},"emails":[{"primary":true,"value":"david@example.org","type":"work"}],
		"active":true}`).wantSCIM(t, "put", 200, "")
	if put.str("displayName") != "David Doe" || put.str("externalId") != "" || put.header.Get("ETag") == created.header.Get("ETag") {
		t.Fatalf("put replaces: %v %v", put.header, put.body)
	}
	// A PUT without phoneNumbers keeps the phone (an enrolled SMS factor);
	// a remove clears it.
	e.scim("PATCH", "/Users/"+id, tok, `{"Operations":[{"op":"add","path":"phoneNumbers[type eq \"mobile\"].value","value":"+15555550123"}]}`).wantSCIM(t, "add phone", 200, "")
	put = e.scim("PUT", "/Users/"+id, tok, `{"userName":"dave@example.org","displayName":"David Doe","active":true}`).wantSCIM(t, "put without phones", 200, "")
	if ph, _ := put.body["phoneNumbers"].([]any); len(ph) != 1 || ph[0].(map[string]any)["value"] != "+15555550123" {
		t.Fatalf("a PUT without phoneNumbers: %v", put.body)
	}
	put = e.scim("PATCH", "/Users/"+id, tok, `{"Operations":[{"op":"remove","path":"phoneNumbers"}]}`).wantSCIM(t, "remove phone", 200, "")
	if put.body["phoneNumbers"] != nil {
		t.Fatalf("after removing phoneNumbers: %v", put.body)
	}
	e.scim("PATCH", "/Users/"+id, tok, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"op":"replace","value":{"active":false}}]}`).wantSCIM(t, "deactivate", 200, "")
	wantTokensEnded(t, e, "tokens after deactivation", tk)
	e.scim("PATCH", "/Users/"+id, tok, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"op":"replace","value":{"active":true}}]}`).wantSCIM(t, "reactivate", 200, "")
	signIn(t, e, e.browser(), r, nil, "dave@example.org", "Dave's long passphrase 1")
	e.scim("DELETE", "/Users/"+id, tok, "").wantSCIM(t, "delete", 204, "")
	e.scim("GET", "/Users/"+id, tok, "").wantSCIM(t, "get after delete", 404, "")
}

// A taken userName or email (ignoring case) is 409 uniqueness; a stale
// If-Match is 412 and changes nothing.
func TestSCIMUniquenessAndIfMatch(t *testing.T) {
	e := scimEnv(t)
	tok := e.ccToken("bank", bankSecret, "stepup:scim")
	e.scim("POST", "/Users", tok, `{"userName":"ALICE"}`).wantSCIM(t, "taken userName", 409, "uniqueness")
	e.scim("POST", "/Users", tok, `{"userName":"bob2","emails":[{"value":"Bob@Example.com"}]}`).wantSCIM(t, "taken email", 409, "uniqueness")
	u := e.scim("POST", "/Users", tok, `{"userName":"erin"}`).wantSCIM(t, "create", 201, "")
	id, tag := u.str("id"), u.header.Get("ETag")
	e.scim("PATCH", "/Users/"+id, tok, `{"Operations":[{"op":"replace","path":"userName","value":"bob"}]}`).wantSCIM(t, "rename to a taken name", 409, "uniqueness")
	e.scim("PUT", "/Users/"+id, tok, `{"userName":"erin","displayName":"Stale"}`, "If-Match", `W/"999"`).wantSCIM(t, "stale If-Match", 412, "")
	e.scim("PUT", "/Users/"+id, tok, `{"userName":"erin","displayName":"Fresh"}`, "If-Match", tag).wantSCIM(t, "current If-Match", 200, "")
	e.scim("PATCH", "/Users/"+id, tok, `{"Operations":[{"op":"replace","path":"displayName","value":"Stale"}]}`, "If-Match", tag).wantSCIM(t, "old ETag", 412, "")
	if got := e.scim("GET", "/Users/"+id, tok, ""); got.str("displayName") != "Fresh" {
		t.Fatalf("after a 412: %v", got.body)
	}
}

// Filters outside §10's grammar are 400 invalidFilter, never ignored;
// startIndex and count page the list.
func TestSCIMFilterAndPaging(t *testing.T) {
	e := scimEnv(t)
	tok := e.ccToken("bank", bankSecret, "stepup:scim")
	for _, f := range []string{`userName co "a"`, `title eq "x"`, `userName eq "alice" or active eq true`, `(userName eq "alice")`,
		`userName eq alice`, `active eq "yes"`, `userName eq "alice" and`, `userName eq "unterminated`, `emails[type eq "work"]`} {
		e.scim("GET", "/Users?filter="+url.QueryEscape(f), tok, "").wantSCIM(t, f, 400, "invalidFilter")
	}
	all := e.scim("GET", "/Users", tok, "").wantSCIM(t, "all", 200, "")
	if all.body["totalResults"] != 2.0 || len(resources(t, all)) != 2 {
		t.Fatalf("all users: %v", all.body)
	}
	p := e.scim("GET", "/Users?startIndex=2&count=1", tok, "").wantSCIM(t, "page 2", 200, "")
	if rs := resources(t, p); p.body["totalResults"] != 2.0 || p.body["itemsPerPage"] != 1.0 || p.body["startIndex"] != 2.0 || len(rs) != 1 || rs[0]["id"] == resources(t, all)[0]["id"] {
		t.Fatalf("page 2: %v", p.body)
	}
	l := e.scim("GET", "/Users?filter="+url.QueryEscape(`userName eq "alice" and emails.value eq "alice@example.com" and active eq true`), tok, "")
	if rs := resources(t, l); len(rs) != 1 || rs[0]["userName"] != "alice" {
		t.Fatalf("filter with and: %v", l.body)
	}
	e.scim("GET", "/Users?count=x", tok, "").wantSCIM(t, "bad count", 400, "invalidValue")
}

// RFC 7644 §3.5.2 value filters through the endpoint, in the forms Entra
// ID and Okta send: type and primary joined by and, primary alone, a
// value to remove; bad filters and paths are 400 with the RFC's scimType
// and change nothing.
func TestSCIMPatchValueFilters(t *testing.T) {
	e := scimEnv(t)
	tok := e.ccToken("bank", bankSecret, "stepup:scim")
	id := e.scim("POST", "/Users", tok, `{"userName":"hank","emails":[{"value":"hank@home.example","type":"home"},{"value":"hank@work.example","type":"work","primary":true}],
		"phoneNumbers":[{"value":"+15555550111","type":"mobile","primary":true}]}`).wantSCIM(t, "create", 201, "").str("id")
	email := func() string {
		t.Helper()
		got := e.scim("GET", "/Users/"+id, tok, "").wantSCIM(t, "get", 200, "")
		es, _ := got.body["emails"].([]any)
		if len(es) == 0 {
			return ""
		}
		return es[0].(map[string]any)["value"].(string)
	}
	if got := email(); got != "hank@work.example" {
		t.Fatalf("the primary email is the account's: %q", got)
	}
	e.scim("PATCH", "/Users/"+id, tok, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
		{"op":"Replace","path":"emails[type eq \"work\" and primary eq true].value","value":"hank@new.example"}]}`).wantSCIM(t, "type and primary", 200, "")
	if got := email(); got != "hank@new.example" {
		t.Fatalf("after emails[type eq \"work\" and primary eq true].value: %q", got)
	}
	e.scim("PATCH", "/Users/"+id, tok, `{"Operations":[{"op":"replace","path":"phoneNumbers[primary eq true or type eq \"mobile\"].value","value":"+15555550122"}]}`).
		wantSCIM(t, "phone by primary or type", 200, "")
	if got := e.scim("GET", "/Users/"+id, tok, ""); !strings.Contains(got.raw(), `"+15555550122"`) {
		t.Fatalf("after phoneNumbers[primary eq true or type eq \"mobile\"].value: %v", got.body)
	}
	e.scim("PATCH", "/Users/"+id, tok, `{"Operations":[{"op":"remove","path":"emails[value eq \"HANK@new.example\"]"}]}`).wantSCIM(t, "remove by value", 200, "")
	if got := email(); got != "" {
		t.Fatalf("after removing the email by value: %q", got)
	}
	before := e.scim("GET", "/Users/"+id, tok, "").header.Get("ETag")
	for _, c := range []struct{ path, scimType string }{
		{`emails[type gt \"work\"].value`, "invalidFilter"},
		{`emails[type eq work].value`, "invalidFilter"},
		{`emails[type eq \"work\"`, "invalidPath"},
		{`userName[value eq \"x\"]`, "invalidPath"},
		{`emails[type ne \"work\"].value`, "noTarget"},
	} {
		e.scim("PATCH", "/Users/"+id, tok, `{"Operations":[{"op":"replace","path":"`+c.path+`","value":"x@y.example"}]}`).wantSCIM(t, c.path, 400, c.scimType)
	}
	if after := e.scim("GET", "/Users/"+id, tok, "").header.Get("ETag"); after != before {
		t.Fatalf("a refused PATCH changed the user: ETag %s → %s", before, after)
	}
}

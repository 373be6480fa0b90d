package server_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/stepup-dev/stepup/authn/password"
)

// htpasswdHash is a bcrypt hash made by Debian's htpasswd (apache2-utils),
// not by stepup, for the password htpasswdPassword:
//
//	htpasswd -nbB -C 10 x 'scim imported pw 1'
const (
	htpasswdHash     = "$2y$10$KDbY7bW50JE0ydKbO8L2vOVI7WNIF7AvL1/wD50PQo7mOONVGhP.q"
	htpasswdPassword = "scim imported pw 1"
	importedTOTP     = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
)

// PRODUCT.md §10: a SCIM POST may carry the extension's write-only
// passwordHash (a hash made elsewhere, §9) and totpSecret. The user
// signs in through the hosted pages with that password and a code from
// that secret (the authenticator app they already have), gets the
// multi-factor acr and amr, and the bcrypt hash is replaced by argon2id
// at that first sign-in. Neither secret is ever returned.
func TestSCIMCreateWithPasswordHashAndTOTPSecret(t *testing.T) {
	e := scimEnv(t)
	tok := e.ccToken("bank", bankSecret, "stepup:scim")
	created := e.scim("POST", "/Users", tok, `{
		"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User","urn:stepup:params:scim:schemas:extension:2.0:User"],
		"userName": "frank@example.org",
		"emails": [{"primary": true, "value": "frank@example.org"}],
		"urn:stepup:params:scim:schemas:extension:2.0:User": {
			"passwordHash": "`+htpasswdHash+`",
			"totpSecret": "`+strings.ToLower(importedTOTP[:16])+" "+importedTOTP[16:]+`"
		}
	}`).wantSCIM(t, "create with passwordHash and totpSecret", 201, "")
	id := created.str("id")
	ext, _ := created.body["urn:stepup:params:scim:schemas:extension:2.0:User"].(map[string]any)
	if ext == nil || ext["passwordHash"] != nil || ext["totpSecret"] != nil || !strings.Contains(created.raw(), `"totp"`) {
		t.Fatalf("create: the secrets are write-only and factors lists totp: %v", created.body)
	}
	if strings.Contains(created.raw(), htpasswdHash) || strings.Contains(strings.ToUpper(created.raw()), importedTOTP[:16]) {
		t.Fatalf("create returned a secret: %s", created.raw())
	}
	got := e.scim("GET", "/Users?filter="+url.QueryEscape(`userName eq "frank@example.org"`), tok, "").wantSCIM(t, "lookup", 200, "")
	if strings.Contains(got.raw(), "$2y$") || strings.Contains(strings.ToUpper(got.raw()), importedTOTP[16:]) {
		t.Fatalf("list returned a secret: %s", got.raw())
	}

	s := e.accounts()
	rec, err := s.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.PasswordHash != htpasswdHash || rec.TOTPSecret != importedTOTP {
		t.Fatalf("stored hash %.12s…, TOTP secret set %v; want the htpasswd hash and the normalised secret", rec.PasswordHash, rec.TOTPSecret != "")
	}

	b, r := e.browser(), e.rp("spa", "")
	a := r.authURL(map[string]string{"acr_values": mfaACR})
	if p := b.login(b.get(a.url), "frank@example.org", "not the password"); p.status != 401 {
		t.Fatalf("a wrong password: %d", p.status)
	}
	p := b.login(b.get(a.url), "frank@example.org", htpasswdPassword)
	if p.loc != nil {
		t.Fatal("multi-factor was requested and the user has TOTP, but the flow completed after the password")
	}
	p = b.code(p, "totp", e.totpCode(importedTOTP))
	tk := r.mustExchange(a, p.result(t))
	wantClaims(t, tk, mfaACR, []string{"pwd", "otp", "mfa"})
	if tk.claims.Sub != id {
		t.Fatalf("sub %q, want the SCIM id %q", tk.claims.Sub, id)
	}

	rec, err = s.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rec.PasswordHash, "$argon2id$") || password.NeedsRehash(rec.PasswordHash, password.DefaultParams) {
		t.Fatalf("after the first sign-in the hash is %.30s…, want argon2id at the default parameters", rec.PasswordHash)
	}
	if ok, err := password.Verify(rec.PasswordHash, htpasswdPassword); err != nil || !ok {
		t.Fatalf("the new hash does not verify the password: %v, %v", ok, err)
	}
}

// A passwordHash stepup cannot read, a password and a passwordHash
// together, and a totpSecret that is not base32 of at least 80 bits are
// 400 invalidValue, and nothing is created.
func TestSCIMCreateRejectsBadSecrets(t *testing.T) {
	e := scimEnv(t)
	tok := e.ccToken("bank", bankSecret, "stepup:scim")
	for what, ext := range map[string]string{
		"an unknown hash format":   `"passwordHash": "{SSHA}abcdef"`,
		"a truncated bcrypt hash":  `"passwordHash": "` + htpasswdHash[:40] + `"`,
		"a TOTP secret not base32": `"totpSecret": "not base32!"`,
		"a TOTP secret too short":  `"totpSecret": "GEZDGNBV"`,
	} {
		e.scim("POST", "/Users", tok, `{"userName":"gina","urn:stepup:params:scim:schemas:extension:2.0:User":{`+ext+`}}`).wantSCIM(t, what, 400, "invalidValue")
	}
	e.scim("POST", "/Users", tok, `{"userName":"gina","password":"a long password 12","urn:stepup:params:scim:schemas:extension:2.0:User":{"passwordHash":"`+htpasswdHash+`"}}`).
		wantSCIM(t, "password and passwordHash", 400, "invalidValue")
	if l := e.scim("GET", "/Users?filter="+url.QueryEscape(`userName eq "gina"`), tok, ""); l.body["totalResults"] != 0.0 {
		t.Fatalf("a refused create created: %v", l.body)
	}
}

// raw is the answer's body as JSON, to look for what must not be in it.
func (a apiResp) raw() string { b, _ := json.Marshal(a.body); return string(b) }

// RFC 7644 §3.5.1, attribute by attribute (docs/scim.md "PUT"): a PUT
// clears the readWrite attributes it leaves out (externalId, name,
// emails), never the writeOnly ones (password, passwordHash, totpSecret:
// a client cannot read them back, so leaving them out asserts nothing),
// and keeps active, the phone and emailMfa, which are factors or the
// account's state (the RFC lets a service provider default what a
// client does not assert; stepup's default is the current value, so a
// PUT never re-enables a disabled user nor drops an enrolled factor). An
// empty phoneNumbers list, or "active": true, changes them.
func TestSCIMPutOmissionsPerAttribute(t *testing.T) {
	e := scimEnv(t)
	tok := e.ccToken("bank", bankSecret, "stepup:scim")
	id := e.scim("POST", "/Users", tok, `{"userName":"ivy","externalId":"x-1","displayName":"Ivy","active":true,
		"emails":[{"value":"ivy@example.org","primary":true}],"phoneNumbers":[{"value":"+15555550133","type":"mobile"}],
		"password":"ivy's long password 1",
		"urn:stepup:params:scim:schemas:extension:2.0:User":{"totpSecret":"`+importedTOTP+`","emailMfa":true}}`).wantSCIM(t, "create", 201, "").str("id")
	e.scim("PATCH", "/Users/"+id, tok, `{"Operations":[{"op":"replace","path":"active","value":false}]}`).wantSCIM(t, "disable", 200, "")

	put := e.scim("PUT", "/Users/"+id, tok, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ivy"}`).wantSCIM(t, "a PUT of userName alone", 200, "")
	ext, _ := put.body["urn:stepup:params:scim:schemas:extension:2.0:User"].(map[string]any)
	factors, _ := ext["factors"].([]any)
	if put.body["externalId"] != nil || put.body["displayName"] != nil || put.body["emails"] != nil {
		t.Errorf("readWrite attributes left out are cleared: %v", put.body)
	}
	if put.body["active"] != false {
		t.Errorf("a PUT without active re-enabled a disabled user: %v", put.body)
	}
	if ext["emailMfa"] != true || len(factors) != 3 || !strings.Contains(put.raw(), `"+15555550133"`) {
		t.Errorf("the phone, TOTP and emailMfa are kept: %v", put.body)
	}
	rec, err := e.accounts().Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.PasswordHash == "" || rec.TOTPSecret != importedTOTP || rec.Phone != "+15555550133" || !rec.EmailMFA || rec.Active {
		t.Fatalf("after the PUT: password set %v, TOTP kept %v, phone %q, emailMfa %v, active %v", rec.PasswordHash != "", rec.TOTPSecret == importedTOTP, rec.Phone, rec.EmailMFA, rec.Active)
	}

	// phoneNumbers without a mobile value (Okta's work phone) do not
	// speak of the SMS factor.
	put = e.scim("PUT", "/Users/"+id, tok, `{"userName":"ivy","phoneNumbers":[{"value":"+15555550144","type":"work"}]}`).wantSCIM(t, "a PUT with a work phone", 200, "")
	if !strings.Contains(put.raw(), `"+15555550133"`) {
		t.Errorf("a PUT with only a work phone removed the SMS factor: %v", put.body)
	}
	put = e.scim("PUT", "/Users/"+id, tok, `{"userName":"ivy","active":true,"phoneNumbers":[],
		"urn:stepup:params:scim:schemas:extension:2.0:User":{"emailMfa":false}}`).wantSCIM(t, "a PUT asserting active, phones and emailMfa", 200, "")
	if put.body["active"] != true || put.body["phoneNumbers"] != nil || strings.Contains(put.raw(), `"sms"`) || strings.Contains(put.raw(), `"email"`) {
		t.Fatalf("given values replace: %v", put.body)
	}
	// The password and the TOTP secret survived both PUTs.
	b, r := e.browser(), e.rp("spa", "")
	a := r.authURL(map[string]string{"acr_values": mfaACR})
	p := b.login(b.get(a.url), "ivy", "ivy's long password 1")
	if p.loc != nil {
		t.Fatal("the TOTP factor is gone after a PUT that left it out")
	}
	wantClaims(t, r.mustExchange(a, b.code(p, "totp", e.totpCode(importedTOTP)).result(t)), mfaACR, []string{"pwd", "otp", "mfa"})
}

package scim

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stepup-dev/stepup/account"
	"github.com/stepup-dev/stepup/account/scimuser"
	"github.com/stepup-dev/stepup/server/obs"
	"github.com/stepup-dev/stepup/server/op"
)

type multi struct {
	Value   string `json:"value"`
	Type    string `json:"type,omitempty"`
	Primary bool   `json:"primary,omitempty"`
}

type extOut struct {
	EmailMFA bool     `json:"emailMfa"`
	Factors  []string `json:"factors"`
}

type meta struct {
	ResourceType string `json:"resourceType"`
	Created      string `json:"created"`
	LastModified string `json:"lastModified"`
	Location     string `json:"location"`
	Version      string `json:"version"`
}

type userOut struct {
	Schemas      []string          `json:"schemas"`
	ID           string            `json:"id"`
	ExternalID   string            `json:"externalId,omitempty"`
	UserName     string            `json:"userName"`
	Name         map[string]string `json:"name,omitempty"`
	DisplayName  string            `json:"displayName,omitempty"`
	Emails       []multi           `json:"emails,omitempty"`
	PhoneNumbers []multi           `json:"phoneNumbers,omitempty"`
	Active       bool              `json:"active"`
	Ext          extOut            `json:"urn:stepup:params:scim:schemas:extension:2.0:User"`
	Meta         *meta             `json:"meta,omitempty"`
}

func etag(r *account.Record) string { return `W/"` + strconv.FormatInt(r.Version, 10) + `"` }

func (h *Handler) location(sub string) string { return h.p.Issuer() + "/scim/v2/Users/" + sub }

// resource is the SCIM User of r; withMeta false gives the writable
// attributes only (PATCH works on them).
func (h *Handler) resource(r *account.Record, withMeta bool) *userOut {
	u := &userOut{Schemas: []string{SchemaUser, scimuser.ExtensionSchema}, ID: r.Subject, ExternalID: r.ExternalID,
		UserName: r.Username, Active: r.Active, Ext: extOut{EmailMFA: r.EmailMFA, Factors: []string{}}}
	if r.Name != "" {
		u.Name, u.DisplayName = map[string]string{"formatted": r.Name}, r.Name
	}
	if r.Email != "" {
		u.Emails = []multi{{Value: r.Email, Type: "work", Primary: true}}
	}
	if r.Phone != "" {
		u.PhoneNumbers = []multi{{Value: r.Phone, Type: "mobile"}}
		u.Ext.Factors = append(u.Ext.Factors, "sms")
	}
	if r.TOTPSecret != "" {
		u.Ext.Factors = append(u.Ext.Factors, "totp")
	}
	if len(r.Passkeys) > 0 {
		u.Ext.Factors = append(u.Ext.Factors, "webauthn")
	}
	if r.EmailMFA {
		u.Ext.Factors = append(u.Ext.Factors, "email")
	}
	if r.RecoveryCodes > 0 {
		u.Ext.Factors = append(u.Ext.Factors, "recovery")
	}
	if withMeta {
		u.Meta = &meta{ResourceType: "User", Created: r.CreatedAt.UTC().Format(time.RFC3339), LastModified: r.UpdatedAt.UTC().Format(time.RFC3339),
			Location: h.location(r.Subject), Version: etag(r)}
	}
	return u
}

func (h *Handler) writeUser(w http.ResponseWriter, status int, r *account.Record) {
	w.Header().Set("ETag", etag(r))
	if status == http.StatusCreated {
		w.Header().Set("Location", h.location(r.Subject))
	}
	writeJSON(w, status, h.resource(r, true))
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	op.LimitBody(w, r)
	b, err := io.ReadAll(r.Body)
	if err != nil {
		if op.BodyTooLarge(err) {
			fail(w, http.StatusRequestEntityTooLarge, "", "the body is larger than "+strconv.Itoa(op.MaxBodyBytes)+" bytes")
		} else {
			fail(w, http.StatusBadRequest, "invalidSyntax", "the body could not be read")
		}
		return nil, false
	}
	if err := checkStrings(b); err != nil {
		fail(w, http.StatusBadRequest, "invalidValue", err.Error())
		return nil, false
	}
	return b, true
}

// parseUser reads a SCIM User: 400 invalidSyntax for JSON that is not
// one, invalidValue for a value stepup cannot take.
func parseUser(w http.ResponseWriter, b []byte) (*scimuser.User, bool) {
	u, err := scimuser.Parse(b)
	if err != nil {
		scimType := "invalidSyntax"
		if strings.Contains(err.Error(), "userName") {
			scimType = "invalidValue"
		}
		fail(w, http.StatusBadRequest, scimType, err.Error())
		return nil, false
	}
	return u, true
}

// apply writes u onto rec. With replace (PUT, and PATCH, which works on
// the whole user) it follows RFC 7644 §3.5.1 per attribute (docs/scim.md
// "PUT"): the readWrite attributes u leaves out (externalId, name,
// emails) are cleared; the writeOnly secrets (password, passwordHash,
// totpSecret) are never cleared by leaving them out, since no client can
// read them back; active, emailMfa and the phone keep their value unless
// given, as the RFC lets a service provider default what a client does
// not assert: a PUT never re-enables a disabled account, and never drops
// a factor the user may have enrolled on their own.
func (h *Handler) apply(w http.ResponseWriter, r *http.Request, u *scimuser.User, rec *account.Record, replace bool) bool {
	if replace {
		rec.ExternalID, rec.Name, rec.Email = "", "", ""
		// The phone is an SMS factor: only phoneNumbers that speak of it
		// (a mobile value, or an empty list, which clears) change it. A
		// list of other types (Okta's work phone) leaves it.
		if u.PhoneNumbers != nil && (len(u.PhoneNumbers) == 0 || slices.ContainsFunc(u.PhoneNumbers, isMobile)) {
			rec.Phone = ""
		}
	}
	if err := u.Apply(rec); err != nil {
		fail(w, http.StatusBadRequest, "invalidValue", err.Error())
		return false
	}
	if u.Password != "" {
		hash, err := h.p.HashPassword(r.Context(), u.Password)
		if err != nil {
			h.unavailable(w, r, err)
			return false
		}
		rec.PasswordHash = hash
	}
	return true
}

func isMobile(p scimuser.MultiValued) bool { return strings.EqualFold(p.Type, "mobile") }

func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	st, ok := h.store(w)
	if !ok {
		return
	}
	b, ok := readBody(w, r)
	if !ok {
		return
	}
	u, ok := parseUser(w, b)
	if !ok {
		return
	}
	rec := &account.Record{Active: true}
	if !h.apply(w, r, u, rec, false) {
		return
	}
	rec.Subject = randomSubject() // the service provider assigns id (RFC 7643 §3.1)
	got, err := st.Durable().Create(r.Context(), rec)
	if err != nil {
		h.storeFailure(w, r, err)
		return
	}
	h.writeUser(w, http.StatusCreated, got)
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	st, ok := h.store(w)
	if !ok {
		return
	}
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	rec, err := st.Durable().Get(r.Context(), id)
	if err != nil {
		h.storeFailure(w, r, err)
		return
	}
	h.writeUser(w, http.StatusOK, rec)
}

type listResponse struct {
	Schemas      []string   `json:"schemas"`
	TotalResults int        `json:"totalResults"`
	ItemsPerPage int        `json:"itemsPerPage"`
	StartIndex   int        `json:"startIndex"`
	Resources    []*userOut `json:"Resources"`
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	st, ok := h.store(w)
	if !ok {
		return
	}
	search, ok := st.Durable().(account.Searcher)
	if !ok {
		fail(w, http.StatusNotImplemented, "", "this account database cannot search")
		return
	}
	q, err := ParseFilter(r.URL.Query().Get("filter"))
	if err != nil {
		fail(w, http.StatusBadRequest, "invalidFilter", err.Error())
		return
	}
	start, count := 1, defaultCount
	for name, p := range map[string]*int{"startIndex": &start, "count": &count} {
		if v := r.URL.Query().Get(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				fail(w, http.StatusBadRequest, "invalidValue", name+" is not an integer")
				return
			}
			*p = n
		}
	}
	start = max(start, 1)
	count = min(max(count, 0), maxCount)
	q.Offset, q.Limit = start-1, count
	recs, total, err := search.Search(r.Context(), q)
	if err != nil {
		h.storeFailure(w, r, err)
		return
	}
	out := listResponse{Schemas: []string{SchemaList}, TotalResults: total, ItemsPerPage: len(recs), StartIndex: start, Resources: []*userOut{}}
	for _, rec := range recs {
		out.Resources = append(out.Resources, h.resource(rec, true))
	}
	writeJSON(w, http.StatusOK, out)
}

// modify reads the user, checks If-Match, lets change rewrite the record
// and writes it; a concurrent write is retried unless the client pinned
// a version. Disabling ends the user's sessions and grants.
func (h *Handler) modify(w http.ResponseWriter, r *http.Request, change func(*account.Record) bool) {
	st, ok := h.store(w)
	if !ok {
		return
	}
	sub, ok := pathID(w, r)
	if !ok {
		return
	}
	ctx, ifMatch := r.Context(), strings.TrimSpace(r.Header.Get("If-Match"))
	for try := 0; ; try++ {
		rec, err := st.Durable().Get(ctx, sub)
		if err != nil {
			h.storeFailure(w, r, err)
			return
		}
		if ifMatch != "" && ifMatch != "*" && strings.TrimPrefix(ifMatch, "W/") != strings.TrimPrefix(etag(rec), "W/") {
			fail(w, http.StatusPreconditionFailed, "", "the user's version is "+etag(rec)+", not "+ifMatch)
			return
		}
		wasActive := rec.Active
		if !change(rec) {
			return
		}
		got, err := st.Durable().Update(ctx, rec)
		if errors.Is(err, account.ErrConflict) && ifMatch == "" && try < conflictRetries {
			continue
		}
		if err != nil {
			h.storeFailure(w, r, err)
			return
		}
		if !got.Active {
			// Also when it was inactive already: a retry after a first
			// call whose Redis half failed (503), or the second of two
			// racing calls, returns only once the sessions and grants
			// are ended (codes of single sign-on are not checked against
			// the account at their exchange: op.Finish). Idempotent.
			if err := h.endSessions(ctx, sub); err != nil {
				h.unavailable(w, r, err)
				return
			}
			if wasActive {
				h.p.Audit(ctx, obs.EventAccountDisabled, "sub", sub, "client_id", clientOf(ctx))
			}
		}
		h.writeUser(w, http.StatusOK, got)
		return
	}
}

func (h *Handler) replace(w http.ResponseWriter, r *http.Request) {
	b, ok := readBody(w, r)
	if !ok {
		return
	}
	u, ok := parseUser(w, b)
	if !ok {
		return
	}
	h.modify(w, r, func(rec *account.Record) bool { return h.apply(w, r, u, rec, true) })
}

func (h *Handler) delete(w http.ResponseWriter, r *http.Request) {
	st, ok := h.store(w)
	if !ok {
		return
	}
	sub, ok := pathID(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	// As the admin API: disabled first (nothing new is issued), then
	// everything in Redis ended, then the record deleted.
	if err := st.SetActive(ctx, sub, false); err != nil {
		h.storeFailure(w, r, err)
		return
	}
	if err := h.endSessions(ctx, sub); err != nil {
		h.unavailable(w, r, err)
		return
	}
	if err := st.DeleteAccount(ctx, sub); err != nil {
		h.storeFailure(w, r, err)
		return
	}
	h.p.Audit(ctx, obs.EventAccountDeleted, "sub", sub, "client_id", clientOf(ctx))
	w.WriteHeader(http.StatusNoContent)
}

// userJSON is the writable SCIM User of rec as a generic object.
func (h *Handler) userJSON(rec *account.Record) map[string]any {
	b, _ := json.Marshal(h.resource(rec, false))
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	delete(m, "id")
	delete(m, "schemas")
	// name.formatted would win over a patched displayName: the name is
	// given once, as displayName.
	delete(m, "name")
	return m
}

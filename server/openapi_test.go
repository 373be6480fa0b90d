package server_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// The JSON APIs are described in docs/openapi.yaml (OpenAPI 3.1). Every
// request that a test of this package sends under a documented prefix
// (/api/v1/, and any other the document adds) goes through
// validatingTransport, which holds the request and its response to the
// document; after a full run every operation must have been answered
// with one of its 2xx responses. So the document cannot drift from the
// server: a changed field, status or error shape fails the tests that
// exercise it.

const openAPIPath = "../docs/openapi.yaml"

// openAPI is the loaded document and what the run saw; TestMain sets it.
var openAPI *apiSpec

func TestMain(m *testing.M) {
	flag.Parse()
	s, err := loadAPISpec(openAPIPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "docs/openapi.yaml:", err)
		os.Exit(1)
	}
	openAPI = s
	// Every client of the tests that leaves Transport nil (http.DefaultClient,
	// the harness's browsers, oauth2) goes through the validator.
	http.DefaultTransport = &validatingTransport{next: http.DefaultTransport, spec: s}
	code := m.Run()
	if code == 0 {
		if msg := s.verdict(fullRun()); msg != "" {
			fmt.Fprint(os.Stderr, msg)
			code = 1
		}
	}
	os.Exit(code)
}

// fullRun: the coverage check means something only when every test ran,
// not under -run, -skip, -list (how .ci/fuzz discovers targets), -fuzz or
// -bench.
func fullRun() bool {
	for _, name := range []string{"test.run", "test.skip", "test.list", "test.fuzz", "test.bench"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return false
		}
	}
	return !testing.Short()
}

type apiSpec struct {
	doc      *openapi3.T
	router   routers.Router
	prefixes []string // path prefixes the document covers, e.g. "/api/v1/"

	mu       sync.Mutex
	answered map[string]bool // operationId → answered 2xx at least once
	problems []string        // violations no test could be blamed for
}

func loadAPISpec(path string) (*apiSpec, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(path)
	if err != nil {
		return nil, err
	}
	if !doc.IsOpenAPI31OrLater() {
		return nil, fmt.Errorf("openapi %q: the document is OpenAPI 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, err
	}
	s := &apiSpec{doc: doc, answered: map[string]bool{}}
	for _, p := range doc.Paths.InMatchingOrder() {
		// "/api/v1/users/{user_id}/lock" → "/api/v1/"
		parts := strings.SplitN(p, "/", 4)
		if len(parts) < 4 {
			return nil, fmt.Errorf("path %s: want /<api>/<version>/…", p)
		}
		if pre := "/" + parts[1] + "/" + parts[2] + "/"; !slices.Contains(s.prefixes, pre) {
			s.prefixes = append(s.prefixes, pre)
		}
		for method, op := range doc.Paths.Value(p).Operations() {
			if op.OperationID == "" {
				return nil, fmt.Errorf("%s %s: no operationId", method, p)
			}
		}
	}
	// The document's server is the issuer, a variable for readers; the
	// tests' issuers are many, so routes match on the path alone.
	routed := *doc
	routed.Servers = nil
	if s.router, err = gorillamux.NewRouter(&routed); err != nil {
		return nil, err
	}
	return s, nil
}

// covers says whether the validator looks at a request path.
func (s *apiSpec) covers(path string) bool {
	for _, p := range s.prefixes {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// verdict lists what went wrong outside any test, and, after a full run,
// every operation never answered with a 2xx.
func (s *apiSpec) verdict(full bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, p := range s.problems {
		fmt.Fprintf(&b, "docs/openapi.yaml: %s\n", p)
	}
	if full {
		var missing []string
		for _, p := range s.doc.Paths.InMatchingOrder() {
			for method, op := range s.doc.Paths.Value(p).Operations() {
				if !s.answered[op.OperationID] {
					missing = append(missing, fmt.Sprintf("%s %s (%s)", method, p, op.OperationID))
				}
			}
		}
		sort.Strings(missing)
		for _, m := range missing {
			fmt.Fprintf(&b, "docs/openapi.yaml: no test got a 2xx answer from %s\n", m)
		}
	}
	return b.String()
}

// testKey carries the test that sent a request, so a violation fails
// that test rather than the run.
type testKey struct{}

func withTest(ctx context.Context, t testing.TB) context.Context {
	return context.WithValue(ctx, testKey{}, t)
}

// validatingTransport checks each covered request and its response:
//   - a request the document accepts must get a documented status whose
//     schema its body matches;
//   - a request the document refuses must be refused by the server (4xx),
//     with a documented error body: the tests send bad requests on
//     purpose, and the server must be at least as strict as the document;
//   - an undocumented path or method must answer 404 or 405.
type validatingTransport struct {
	next http.RoundTripper
	spec *apiSpec
}

func (v *validatingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !v.spec.covers(req.URL.Path) {
		return v.next.RoundTrip(req)
	}
	var reqBody []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
	}
	fresh := func() *http.Request {
		r := req.Clone(req.Context())
		r.Body = io.NopCloser(bytes.NewReader(reqBody))
		r.ContentLength = int64(len(reqBody))
		return r
	}
	resp, err := v.next.RoundTrip(fresh())
	if err != nil {
		return nil, err
	}
	respBody, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	if err != nil {
		return resp, nil // the caller sees the short body and fails on it
	}
	if problem, op := v.spec.check(fresh(), resp, respBody); problem != "" {
		msg := fmt.Sprintf("%s %s → %d %s: %s", req.Method, req.URL.Path, resp.StatusCode, excerpt(string(respBody)), problem)
		if t, ok := req.Context().Value(testKey{}).(testing.TB); ok {
			t.Errorf("docs/openapi.yaml: %s", msg)
		} else {
			v.spec.mu.Lock()
			v.spec.problems = append(v.spec.problems, msg)
			v.spec.mu.Unlock()
		}
	} else if op != "" && resp.StatusCode >= 200 && resp.StatusCode < 300 {
		v.spec.mu.Lock()
		v.spec.answered[op] = true
		v.spec.mu.Unlock()
	}
	return resp, nil
}

// check returns what is wrong with an exchange ("" if nothing) and the
// operation it was.
func (s *apiSpec) check(req *http.Request, resp *http.Response, body []byte) (string, string) {
	route, params, err := s.router.FindRoute(req)
	if err != nil {
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
			return "", ""
		}
		return "not in the document (" + err.Error() + ") but answered", ""
	}
	ctx := context.Background()
	in := &openapi3filter.RequestValidationInput{
		Request:    req,
		PathParams: params,
		Route:      route,
		Options: &openapi3filter.Options{
			MultiError: true,
			// Scopes are the server's business; the document requires a
			// bearer token to be sent.
			AuthenticationFunc: func(_ context.Context, ai *openapi3filter.AuthenticationInput) error {
				if !strings.HasPrefix(ai.RequestValidationInput.Request.Header.Get("Authorization"), "Bearer ") {
					return errors.New("no bearer token")
				}
				return nil
			},
		},
	}
	reqErr := openapi3filter.ValidateRequest(ctx, in)
	if reqErr != nil && resp.StatusCode < 400 {
		return "the document refuses this request, the server accepted it: " + reqErr.Error(), route.Operation.OperationID
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		return "response: " + err.Error(), route.Operation.OperationID
	}
	return "", route.Operation.OperationID
}

// TestOpenAPIValidatorCanFail shows the validator is not a rubber stamp:
// an answer with an undocumented field, a status the operation does not
// list, a success for a request the document refuses, and an error body
// without error_description are each reported; a documented exchange is
// not.
func TestOpenAPIValidatorCanFail(t *testing.T) {
	s := openAPI
	req := func(method, path, body string, auth bool) *http.Request {
		r, _ := http.NewRequest(method, "http://127.0.0.1:1"+path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		if auth {
			r.Header.Set("Authorization", "Bearer x")
		}
		return r
	}
	resp := func(status int, body string) (*http.Response, []byte) {
		h := http.Header{}
		h.Set("Content-Type", "application/json")
		if status == 401 {
			h.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		}
		return &http.Response{StatusCode: status, Header: h}, []byte(body)
	}
	good := `{"user_id":"u","action_type":"pay","code":"123456","grant_type":"ONE_TIME_USE","valid_for_seconds":60}`
	for _, c := range []struct {
		name       string
		req        *http.Request
		status     int
		body       string
		wantReport bool
	}{
		{"documented success", req("POST", "/api/v1/step-up/verify-totp", good, true), 200, `{"step_up_grant":"g","expires_at":1}`, false},
		{"documented error", req("POST", "/api/v1/step-up/verify-totp", good, true), 400, `{"error":"invalid_code","error_description":"no"}`, false},
		{"refused bad request", req("POST", "/api/v1/step-up/verify-totp", `{"user_id":"u","colour":"red"}`, true), 400, `{"error":"invalid_request","error_description":"no"}`, false},
		{"undocumented field in answer", req("POST", "/api/v1/step-up/verify-totp", good, true), 200, `{"step_up_grant":"g","expires_at":1,"extra":true}`, true},
		{"undocumented status", req("POST", "/api/v1/step-up/verify-totp", good, true), 418, `{"error":"teapot","error_description":"no"}`, true},
		{"accepted what the document refuses", req("POST", "/api/v1/step-up/verify-totp", `{"user_id":"u"}`, true), 200, `{"step_up_grant":"g","expires_at":1}`, true},
		{"accepted without a token", req("DELETE", "/api/v1/sessions/s1", "", false), 204, ``, true},
		{"error without description", req("GET", "/api/v1/users/u/sessions", "", true), 404, `{"error":"user_not_found"}`, true},
		{"undocumented path answered", req("GET", "/api/v1/nowhere", "", true), 200, `{}`, true},
		{"undocumented path refused", req("GET", "/api/v1/nowhere", "", true), 404, `404 page not found`, false},
	} {
		r, b := resp(c.status, c.body)
		problem, _ := s.check(c.req, r, b)
		if (problem != "") != c.wantReport {
			t.Errorf("%s: problem %q, want reported=%v", c.name, problem, c.wantReport)
		}
	}
}

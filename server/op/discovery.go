package op

import (
	"encoding/json"
	"github.com/stepup-dev/stepup/i18n"
	"net/http"
	"strconv"
	"time"
)

// Endpoint paths, relative to the issuer.
const (
	PathDiscovery     = "/.well-known/openid-configuration"
	PathAuthorize     = "/authorize"
	PathToken         = "/oauth/token"
	PathIntrospect    = "/oauth/introspect"
	PathRevoke        = "/oauth/revoke"
	PathUserinfo      = "/userinfo"
	PathJWKS          = "/keys"
	PathEndSession    = "/end_session"
	PathLoginPrefix   = "/login/"
	PathLogoutConfirm = "/logout"
)

// discoveryDocument is serialized once: it never changes while running.
func (p *Provider) discoveryDocument() ([]byte, error) {
	acrs := make([]string, len(p.ladder))
	for i, l := range p.ladder {
		acrs[i] = l.ACR
	}
	doc := map[string]any{
		"issuer":                                        p.issuer,
		"authorization_endpoint":                        p.issuer + PathAuthorize,
		"token_endpoint":                                p.issuer + PathToken,
		"userinfo_endpoint":                             p.issuer + PathUserinfo,
		"jwks_uri":                                      p.issuer + PathJWKS,
		"introspection_endpoint":                        p.issuer + PathIntrospect,
		"revocation_endpoint":                           p.issuer + PathRevoke,
		"end_session_endpoint":                          p.issuer + PathEndSession,
		"scopes_supported":                              []string{"openid", "profile", "email", "phone", "offline_access"},
		"response_types_supported":                      []string{"code"},
		"response_modes_supported":                      []string{"query"},
		"grant_types_supported":                         []string{"authorization_code", "refresh_token", "client_credentials", string(GrantTypeCIBA)},
		"subject_types_supported":                       []string{"public"},
		"id_token_signing_alg_values_supported":         p.keys.Algorithms(),
		"token_endpoint_auth_methods_supported":         []string{"client_secret_basic", "client_secret_post", "none"},
		"introspection_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"revocation_endpoint_auth_methods_supported":    []string{"client_secret_basic", "client_secret_post", "none"},
		"code_challenge_methods_supported":              []string{"S256"},
		"acr_values_supported":                          acrs,
		"claims_supported": []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "sid",
			"name", "preferred_username", "email", "email_verified", "phone_number", "phone_number_verified"},
		"claims_parameter_supported":                     true,
		"request_parameter_supported":                    false,
		"request_uri_parameter_supported":                false,
		"authorization_response_iss_parameter_supported": true,
		"prompt_values_supported":                        []string{"none", "login", "consent", "select_account"},
		"ui_locales_supported":                           i18n.Languages(),
		"claim_types_supported":                          []string{"normal"},
		// CIBA Core §4.
		"backchannel_authentication_endpoint":        p.issuer + PathBCAuthorize,
		"backchannel_token_delivery_modes_supported": []string{"poll", "ping"},
		"backchannel_user_code_parameter_supported":  false,
	}
	return json.Marshal(doc)
}

func writeJSONBytes(w http.ResponseWriter, body []byte, cache string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", cache)
	w.Header().Set("Access-Control-Allow-Origin", "*")
	_, _ = w.Write(body)
}

func (p *Provider) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	writeJSONBytes(w, p.discovery, "public, max-age=300")
}

func (p *Provider) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	writeJSONBytes(w, p.keys.JWKS(), "public, max-age="+strconv.Itoa(int(JWKSMaxAge/time.Second)))
}

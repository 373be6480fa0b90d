// Package rs protects a resource server's routes with stepup's access
// tokens and asks clients to step up when a route needs more.
//
// stepup issues RFC 9068 JWT access tokens (header typ at+jwt) carrying
// acr, amr and auth_time. A Validator checks them offline against the
// issuer's key set (fetched from discovery, cached, and re-fetched when a
// token names a key it does not know, so key rotation needs no restart),
// and per route requires
//
//   - an acr, by rank on the ladder: a route that needs the multi-factor
//     level accepts phr and phrh too, and an acr the ladder does not know
//     satisfies nothing;
//   - a max_age: the token's auth_time must be at most that old.
//
// When a requirement is unmet the answer is RFC 9470's 401:
//
//	WWW-Authenticate: Bearer error="insufficient_user_authentication",
//	  error_description="A different authentication level is required",
//	  acr_values="http://schemas.openid.net/pape/policies/2007/06/multi-factor",
//	  max_age="300"
//
// acr_values and max_age repeat everything the route requires (max_age
// only when the route sets one), so one new authorization request — built
// by package rp — satisfies the route. Every parameter is a quoted-string,
// as in the RFC's examples. Invalid, expired and foreign tokens get
// RFC 6750's invalid_token, a missing scope 403 insufficient_scope.
//
// Require is net/http middleware; Check is the same decision as a plain
// function for other routers. Tokens stay valid until they expire (stepup's
// access tokens live 10 minutes) even if revoked at the provider, or if the
// session they came from was signed out or ended by an operator (offline
// validation); a resource that must see that at once should also call the
// provider's introspection endpoint.
package rs

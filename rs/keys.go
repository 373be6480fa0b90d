package rs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// errKeysUnavailable means the issuer's metadata or keys could not be
// fetched: nothing can be validated, so the request is refused with 503.
var errKeysUnavailable = errors.New("rs: the issuer's keys are unavailable")

// metadata is what the validator needs from the issuer's discovery
// document (OpenID Connect Discovery 1.0 §3 / RFC 8414 §2).
type metadata struct {
	Issuer  string   `json:"issuer"`
	JWKSURI string   `json:"jwks_uri"`
	ACRs    []string `json:"acr_values_supported"`
}

// keyCache holds the issuer's keys by kid. It is refreshed when a token
// names a kid it does not know (key rotation), at most once per
// refreshEvery, and in any case once cacheFor has passed, so neither a
// flood of tokens with made-up kids nor a stale cache after rotation can
// last.
type keyCache struct {
	keys    map[string]jose.JSONWebKey
	fetched time.Time
}

// load fetches discovery (unless both the JWKS URL and the ladder are
// configured) and the key set. The caller holds v.mu.
func (v *Validator) load(ctx context.Context) error {
	if v.jwksURL == "" || v.ladder == nil {
		var md metadata
		if err := v.getJSON(ctx, v.cfg.Issuer+"/.well-known/openid-configuration", &md); err != nil {
			return err
		}
		if md.Issuer != v.cfg.Issuer {
			return fmt.Errorf("rs: discovery names issuer %q, want %q", md.Issuer, v.cfg.Issuer)
		}
		if v.jwksURL == "" {
			if md.JWKSURI == "" {
				return errors.New("rs: discovery has no jwks_uri")
			}
			v.jwksURL = md.JWKSURI
		}
		if v.ladder == nil {
			if len(md.ACRs) == 0 {
				return errors.New("rs: discovery lists no acr_values_supported; set Config.Levels")
			}
			v.ladder = md.ACRs
		}
	}
	var set jose.JSONWebKeySet
	if err := v.getJSON(ctx, v.jwksURL, &set); err != nil {
		return err
	}
	keys := make(map[string]jose.JSONWebKey, len(set.Keys))
	for _, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" || !k.IsPublic() || !k.Valid() {
			continue
		}
		keys[k.KeyID] = k
	}
	v.cache = keyCache{keys: keys, fetched: v.now()}
	return nil
}

func (v *Validator) getJSON(ctx context.Context, url string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return fmt.Errorf("rs: GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("rs: GET %s: status %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out); err != nil {
		return fmt.Errorf("rs: GET %s: %w", url, err)
	}
	return nil
}

// key returns the verification key for kid, refreshing the cache when kid
// is unknown (rotation) or the cache is old. A kid that stays unknown is
// not an outage: the token is simply not valid.
func (v *Validator) key(ctx context.Context, kid string) (jose.JSONWebKey, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.now()
	stale := v.cache.keys == nil || now.Sub(v.cache.fetched) >= v.cacheFor
	_, known := v.lookup(kid)
	if stale || (!known && now.Sub(v.cache.fetched) >= v.refreshEvery) {
		if err := v.load(ctx); err != nil {
			if v.cache.keys == nil {
				return jose.JSONWebKey{}, fmt.Errorf("%w: %w", errKeysUnavailable, err)
			}
			// Keep serving with the keys we have; try again next time.
			v.cache.fetched = now.Add(-v.cacheFor + v.refreshEvery)
		}
	}
	k, ok := v.lookup(kid)
	if !ok {
		return jose.JSONWebKey{}, errUnknownKey
	}
	return k, nil
}

var errUnknownKey = errors.New("rs: the token's signing key is not in the issuer's key set")

// lookup finds kid; a token without a kid is accepted only when the set
// has exactly one key.
func (v *Validator) lookup(kid string) (jose.JSONWebKey, bool) {
	if kid == "" {
		if len(v.cache.keys) == 1 {
			for _, k := range v.cache.keys {
				return k, true
			}
		}
		return jose.JSONWebKey{}, false
	}
	k, ok := v.cache.keys[kid]
	return k, ok
}

// levels returns the acr ladder, loading it if needed.
func (v *Validator) levels(ctx context.Context) ([]string, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ladder == nil {
		if err := v.load(ctx); err != nil {
			return nil, fmt.Errorf("%w: %w", errKeysUnavailable, err)
		}
	}
	return v.ladder, nil
}

// typAccessToken reports whether a JWS typ header names an RFC 9068
// access token ("at+jwt", or the full media type; compared
// case-insensitively, RFC 9068 §2.1 and RFC 7515 §4.1.9).
func typAccessToken(typ string) bool {
	typ = strings.ToLower(typ)
	return typ == "at+jwt" || typ == "application/at+jwt"
}

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
// refreshEvery, and in the background once cacheFor has passed, so
// neither a flood of tokens with made-up kids nor a stale cache after
// rotation can last, and a slow or unreachable issuer never holds up
// requests whose key is known.
type keyCache struct {
	keys    map[string]jose.JSONWebKey
	fetched time.Time
	// tried is the last fetch attempt, successful or not.
	tried time.Time
}

// refresh fetches the issuer's metadata (when the JWKS URL or the ladder
// is still unknown) and key set, unless another fetch just did. No
// request lock is held over the network: fetches are serialised by
// v.fetch, and the result is installed under v.mu.
func (v *Validator) refresh(ctx context.Context) error {
	v.fetch.Lock()
	defer v.fetch.Unlock()
	v.mu.Lock()
	now := v.now()
	if !v.cache.tried.IsZero() && now.Sub(v.cache.tried) < v.refreshEvery {
		// Another request fetched (or failed to) moments ago.
		err := v.lastErr
		v.mu.Unlock()
		return err
	}
	v.cache.tried = now
	jwksURL, ladder := v.jwksURL, v.ladder
	v.mu.Unlock()

	keys, jwksURL, ladder, err := v.load(ctx, jwksURL, ladder)
	v.mu.Lock()
	defer v.mu.Unlock()
	v.lastErr = err
	if err != nil {
		return err
	}
	v.jwksURL, v.ladder = jwksURL, ladder
	v.cache.keys, v.cache.fetched = keys, v.now()
	return nil
}

// refreshInBackground refreshes a stale cache without making anyone
// wait; a refresh already running is enough.
func (v *Validator) refreshInBackground() {
	if !v.fetch.TryLock() {
		return
	}
	v.fetch.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = v.refresh(ctx)
	}()
}

// load fetches discovery (unless both the JWKS URL and the ladder are
// known) and the key set.
func (v *Validator) load(ctx context.Context, jwksURL string, ladder []string) (map[string]jose.JSONWebKey, string, []string, error) {
	if jwksURL == "" || ladder == nil {
		var md metadata
		if err := v.getJSON(ctx, v.cfg.Issuer+"/.well-known/openid-configuration", &md); err != nil {
			return nil, "", nil, err
		}
		if md.Issuer != v.cfg.Issuer {
			return nil, "", nil, fmt.Errorf("rs: discovery names issuer %q, want %q", md.Issuer, v.cfg.Issuer)
		}
		if jwksURL == "" {
			if md.JWKSURI == "" {
				return nil, "", nil, errors.New("rs: discovery has no jwks_uri")
			}
			jwksURL = md.JWKSURI
		}
		if ladder == nil {
			if len(md.ACRs) == 0 {
				return nil, "", nil, errors.New("rs: discovery lists no acr_values_supported; set Config.Levels")
			}
			ladder = md.ACRs
		}
	}
	var set jose.JSONWebKeySet
	if err := v.getJSON(ctx, jwksURL, &set); err != nil {
		return nil, "", nil, err
	}
	keys := make(map[string]jose.JSONWebKey, len(set.Keys))
	for _, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" || !k.IsPublic() || !k.Valid() {
			continue
		}
		keys[k.KeyID] = k
	}
	return keys, jwksURL, ladder, nil
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

// key returns the verification key for kid. A known key is served at
// once (a stale cache is refreshed in the background); an unknown kid
// (rotation) makes this request fetch the key set, at most once per
// refreshEvery. A kid that stays unknown is not an outage: the token is
// simply not valid.
func (v *Validator) key(ctx context.Context, kid string) (jose.JSONWebKey, error) {
	v.mu.Lock()
	k, known := v.lookup(kid)
	stale := v.cache.keys == nil || v.now().Sub(v.cache.fetched) >= v.cacheFor
	v.mu.Unlock()
	if known {
		if stale {
			v.refreshInBackground()
		}
		return k, nil
	}
	err := v.refresh(ctx)
	v.mu.Lock()
	k, known = v.lookup(kid)
	empty := v.cache.keys == nil
	v.mu.Unlock()
	switch {
	case known:
		return k, nil
	case empty && err != nil:
		return jose.JSONWebKey{}, fmt.Errorf("%w: %w", errKeysUnavailable, err)
	}
	return jose.JSONWebKey{}, errUnknownKey
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
	ladder := v.ladder
	v.mu.Unlock()
	if ladder != nil {
		return ladder, nil
	}
	err := v.refresh(ctx)
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ladder == nil {
		if err == nil {
			err = errors.New("rs: the issuer's metadata is not loaded yet")
		}
		return nil, fmt.Errorf("%w: %w", errKeysUnavailable, err)
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

// Package oidctest is a fake OpenID Connect identity provider for tests: an
// httptest server with a discovery document, a JWKS of RSA keys the test
// can rotate, an authorization endpoint that approves at once (sending the
// browser back to the redirect URI with a code) and a token endpoint that
// checks PKCE, and RS256 tokens signed with those keys.
package oidctest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"
)

// Issuer is a running fake identity provider.
type Issuer struct {
	*httptest.Server
	t        *testing.T
	mu       sync.Mutex
	keys     []signingKey // published in the JWKS; the first signs
	codes    map[string]grant
	jwksHits int
	// ClientID and ClientSecret are the one client the token endpoint accepts.
	ClientID, ClientSecret string
	// Claims are added to every ID token the token endpoint issues, over
	// the aud and nonce it sets (so a test can make them wrong).
	Claims map[string]any
	// Refuse, when set, is the OAuth error (such as access_denied) the
	// authorization endpoint sends the browser back with.
	Refuse string
}

type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

// grant is an authorization code waiting for its exchange.
type grant struct{ challenge, nonce, redirect string }

// New starts a fake provider with one signing key; it stops with the test.
func New(t *testing.T) *Issuer {
	t.Helper()
	i := &Issuer{t: t, codes: map[string]grant{}, ClientID: "console", ClientSecret: "console-secret"}
	i.Rotate()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", i.discovery)
	mux.HandleFunc("GET /jwks", i.jwks)
	mux.HandleFunc("GET /authorize", i.authorize)
	mux.HandleFunc("POST /token", i.token)
	// Started only once i.Server is set: the handlers read its URL.
	i.Server = httptest.NewUnstartedServer(mux)
	i.Start()
	t.Cleanup(i.Close)
	return i
}

// Rotate makes a new signing key, publishes it and signs with it from now
// on; the previous keys stay published.
func (i *Issuer) Rotate() string {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		i.t.Fatal(err)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	sk := signingKey{id: "k" + rand.Text()[:8], key: k}
	i.keys = append([]signingKey{sk}, i.keys...)
	return sk.id
}

// Retire stops publishing every key but the current one.
func (i *Issuer) Retire() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.keys = i.keys[:1]
}

// JWKSHits returns how many times the JWKS was fetched.
func (i *Issuer) JWKSHits() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.jwksHits
}

// Token returns claims signed with the current key, with iss set to this
// issuer unless claims set it, and exp an hour from now unless set.
func (i *Issuer) Token(claims map[string]any) string {
	i.mu.Lock()
	k := i.keys[0]
	i.mu.Unlock()
	return i.SignWith(k.id, k.key, claims)
}

// SignWith signs claims (completed as Token does) with key under the key ID
// kid, which need not be published: for forged and unknown-key tokens.
func (i *Issuer) SignWith(kid string, key *rsa.PrivateKey, claims map[string]any) string {
	full := map[string]any{"iss": i.URL, "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()}
	for k, v := range claims {
		full[k] = v
	}
	header := segment(i.t, map[string]any{"alg": "RS256", "typ": "JWT", "kid": kid})
	signed := header + "." + segment(i.t, full)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		i.t.Fatal(err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// CurrentKey returns the current signing key's ID and private key.
func (i *Issuer) CurrentKey() (string, *rsa.PrivateKey) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.keys[0].id, i.keys[0].key
}

// Authorize plays the browser and the provider's sign-in page: it reads
// the authorization URL StartSignIn made and returns the state and a code
// for the redirect, remembering the PKCE challenge and the nonce.
func (i *Issuer) Authorize(authURL string) (state, code string) {
	u, err := url.Parse(authURL)
	if err != nil {
		i.t.Fatal(err)
	}
	code, err = i.grant(u.Query())
	if err != nil {
		i.t.Fatalf("authorization URL %s: %v", authURL, err)
	}
	return u.Query().Get("state"), code
}

// grant checks an authorization request's client, response type and PKCE
// challenge, and returns a code for it.
func (i *Issuer) grant(q url.Values) (string, error) {
	if q.Get("client_id") != i.ClientID || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" {
		return "", errors.New("the request lacks the client, the code response type or an S256 challenge")
	}
	code := "code-" + rand.Text()
	i.mu.Lock()
	i.codes[code] = grant{challenge: q.Get("code_challenge"), nonce: q.Get("nonce"), redirect: q.Get("redirect_uri")}
	i.mu.Unlock()
	return code, nil
}

// authorize is the authorization endpoint: it approves at once and sends
// the browser back to the redirect URI with the state and a code, or, when
// Refuse is set, with that error instead.
func (i *Issuer) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	back, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || !back.IsAbs() {
		http.Error(w, "the request has no absolute redirect_uri", http.StatusBadRequest)
		return
	}
	answer := url.Values{"state": {q.Get("state")}}
	if i.Refuse != "" {
		answer.Set("error", i.Refuse)
	} else {
		code, err := i.grant(q)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		answer.Set("code", code)
	}
	back.RawQuery = answer.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func (i *Issuer) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]any{
		"issuer": i.URL, "authorization_endpoint": i.URL + "/authorize", "token_endpoint": i.URL + "/token",
		"jwks_uri": i.URL + "/jwks", "id_token_signing_alg_values_supported": []string{"RS256"},
	})
}

func (i *Issuer) jwks(w http.ResponseWriter, _ *http.Request) {
	i.mu.Lock()
	i.jwksHits++
	keys := make([]map[string]any, 0, len(i.keys))
	for _, k := range i.keys {
		keys = append(keys, map[string]any{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": k.id,
			"n": base64.RawURLEncoding.EncodeToString(k.key.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.key.E)).Bytes())})
	}
	i.mu.Unlock()
	writeJSON(w, map[string]any{"keys": keys})
}

// token exchanges a code for an ID token, checking the client, the
// redirect URI and the PKCE verifier against the challenge.
func (i *Issuer) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	code := r.PostForm.Get("code")
	i.mu.Lock()
	g, found := i.codes[code]
	delete(i.codes, code)
	i.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if id != i.ClientID || secret != i.ClientSecret || !found || r.PostForm.Get("redirect_uri") != g.redirect ||
		base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
		return
	}
	claims := map[string]any{"aud": i.ClientID, "nonce": g.nonce}
	for k, v := range i.Claims {
		claims[k] = v
	}
	writeJSON(w, map[string]any{"access_token": "at-" + rand.Text(), "token_type": "Bearer", "expires_in": 300,
		"id_token": i.Token(claims)})
}

func segment(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

package gemini_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/llm/gemini"
	"github.com/tidygate/tidygate/internal/adapters/llm/llmtest"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

const serviceAccount = "tidygate@my-project.iam.gserviceaccount.com"

// tokenServer is a fake OAuth 2 token endpoint for a service account: it
// accepts a JWT-bearer grant only when the assertion is signed with the
// account's key, is issued by the account for the cloud-platform scope and
// addressed to the endpoint, and hands out numbered access tokens.
type tokenServer struct {
	URL string
	key *rsa.PrivateKey

	mu        sync.Mutex
	issued    int
	expiresIn int    // seconds, in every token handed out
	refuse    string // an OAuth error code to answer with, with 400
	problems  []string
}

var (
	keyOnce sync.Once
	testKey *rsa.PrivateKey
)

func newTokenServer(t testing.TB) *tokenServer {
	t.Helper()
	keyOnce.Do(func() {
		var err error
		if testKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	ts := &tokenServer{key: testKey, expiresIn: 3600}
	srv := httptest.NewServer(http.HandlerFunc(ts.serve))
	t.Cleanup(srv.Close)
	ts.URL = srv.URL + "/token"
	return ts
}

func (ts *tokenServer) serve(w http.ResponseWriter, r *http.Request) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if err := r.ParseForm(); err != nil || r.Method != http.MethodPost || r.URL.Path != "/token" {
		ts.problems = append(ts.problems, fmt.Sprintf("%s %s: %v", r.Method, r.URL.Path, err))
	}
	if g := r.PostForm.Get("grant_type"); g != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		ts.problems = append(ts.problems, "grant_type "+g)
	}
	if err := ts.verify(r.PostForm.Get("assertion")); err != nil {
		ts.problems = append(ts.problems, err.Error())
		http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if ts.refuse != "" {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = fmt.Fprintf(w, `{"error":%q,"error_description":"Invalid JWT Signature for %s"}`, ts.refuse, serviceAccount)
		return
	}
	ts.issued++
	_, _ = fmt.Fprintf(w, `{"access_token":"ya29.token-%d","token_type":"Bearer","expires_in":%d}`, ts.issued, ts.expiresIn)
}

// verify checks the assertion's RS256 signature and claims.
func (ts *tokenServer) verify(assertion string) error {
	pieces := strings.Split(assertion, ".")
	if len(pieces) != 3 {
		return fmt.Errorf("assertion %q is not a JWT", assertion)
	}
	sig, err := base64.RawURLEncoding.DecodeString(pieces[2])
	if err != nil {
		return err
	}
	digest := sha256.Sum256([]byte(pieces[0] + "." + pieces[1]))
	if err := rsa.VerifyPKCS1v15(&ts.key.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
		return fmt.Errorf("the assertion's signature: %w", err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(pieces[1])
	if err != nil {
		return err
	}
	var claims struct {
		Iss, Scope, Aud string
		Exp, Iat        int64
	}
	if err := json.Unmarshal(raw, &claims); err != nil {
		return err
	}
	if claims.Iss != serviceAccount || claims.Scope != "https://www.googleapis.com/auth/cloud-platform" ||
		claims.Aud != ts.URL || claims.Exp <= claims.Iat {
		return fmt.Errorf("claims %+v", claims)
	}
	return nil
}

func (ts *tokenServer) check(t testing.TB) int {
	t.Helper()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, p := range ts.problems {
		t.Errorf("token endpoint: %s", p)
	}
	return ts.issued
}

// credentialsFile writes a service account's JSON key whose token_uri is
// the fake token endpoint.
func credentialsFile(t testing.TB, tokenURI string) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(testKey)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "my-project", "private_key_id": "key-1",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": serviceAccount, "client_id": "1234", "token_uri": tokenURI,
	})
	path := filepath.Join(t.TempDir(), "sa.json")
	if err := os.WriteFile(path, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func newVertex(t testing.TB, baseURL string, ts *tokenServer) *gemini.Provider {
	t.Helper()
	p, err := gemini.NewVertex(gemini.VertexOptions{Project: "my-project", Location: "europe-west4",
		CredentialsFile: credentialsFile(t, ts.URL), BaseURL: baseURL + "/v1"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewVertexValidates(t *testing.T) {
	ts := newTokenServer(t)
	good := credentialsFile(t, ts.URL)
	notAKey := filepath.Join(t.TempDir(), "user.json")
	_ = os.WriteFile(notAKey, []byte(`{"type":"authorized_user","client_id":"x","refresh_token":"y"}`), 0o600)
	for _, opts := range []gemini.VertexOptions{
		{Location: "us-central1", CredentialsFile: good}, {Project: "p", CredentialsFile: good},
		{Project: "p", Location: "us-central1"},
		{Project: "p", Location: "us-central1", CredentialsFile: filepath.Join(t.TempDir(), "missing.json")},
		{Project: "p", Location: "us-central1", CredentialsFile: notAKey},
		{Project: "p", Location: "us-central1", CredentialsFile: good, BaseURL: "aiplatform.googleapis.com"},
	} {
		if _, err := gemini.NewVertex(opts); err == nil {
			t.Errorf("NewVertex accepted %+v", opts)
		}
	}
	if ts.check(t) != 0 {
		t.Error("building an adapter fetched a token")
	}
}

// TestVertexURLsAndToken checks Vertex AI's URLs for chat, stream and
// embeddings, the bearer token from the service account's JWT-bearer
// grant, and that the token is fetched once and then reused.
func TestVertexURLsAndToken(t *testing.T) {
	ts := newTokenServer(t)
	up := llmtest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, ":generateContent"):
			llmtest.Reply(http.StatusOK, "application/json", `{"candidates":[{"content":{"parts":[{"text":"Hi."}]},"finishReason":"STOP"}],
			  "usageMetadata":{"promptTokenCount":5,"candidatesTokenCount":1}}`)(w, r)
		case strings.HasSuffix(r.URL.Path, ":streamGenerateContent"):
			llmtest.Reply(http.StatusOK, "text/event-stream", sse(`{"candidates":[{"content":{"parts":[{"text":"Hi."}]},"finishReason":"STOP"}],`+
				`"usageMetadata":{"promptTokenCount":5,"candidatesTokenCount":1}}`))(w, r)
		case strings.HasSuffix(r.URL.Path, ":predict"):
			llmtest.Reply(http.StatusOK, "application/json", `{"predictions":[
			  {"embeddings":{"values":[0.5,1],"statistics":{"token_count":2,"truncated":false}}},
			  {"embeddings":{"values":[1,0.5],"statistics":{"token_count":3,"truncated":false}}}]}`)(w, r)
		default:
			googleError(w, http.StatusNotFound, "no such method")
		}
	})
	p := newVertex(t, up.URL, ts)
	if _, err := p.Chat(context.Background(), llmtest.Chat("gemini-2.5-flash")); err != nil {
		t.Fatal(err)
	}
	var c llmtest.Chunks
	if _, err := p.ChatStream(context.Background(), llmtest.Chat("gemini-2.5-flash"), c.Emit); err != nil {
		t.Fatal(err)
	}
	emb, err := p.Embed(context.Background(), domain.EmbedRequest{Model: "text-embedding-005", Inputs: []string{"a", "b"}, Dimensions: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(emb.Vectors, [][]float32{{0.5, 1}, {1, 0.5}}) || emb.Usage.PromptTokens != 5 {
		t.Errorf("Embed = %+v", emb)
	}
	base := "/v1/projects/my-project/locations/europe-west4/publishers/google/models/"
	wantPaths := []string{base + "gemini-2.5-flash:generateContent", base + "gemini-2.5-flash:streamGenerateContent", base + "text-embedding-005:predict"}
	reqs := up.Requests()
	if len(reqs) != len(wantPaths) {
		t.Fatalf("%d requests; want %d", len(reqs), len(wantPaths))
	}
	for i, sent := range reqs {
		if sent.Path != wantPaths[i] || sent.Header.Get("Authorization") != "Bearer ya29.token-1" || sent.Header.Get("X-Goog-Api-Key") != "" {
			t.Errorf("sent %s with Authorization %q; want %s with the first token", sent.Path, sent.Header.Get("Authorization"), wantPaths[i])
		}
	}
	if reqs[1].Query.Encode() != "alt=sse" {
		t.Errorf("stream query %q", reqs[1].Query.Encode())
	}
	sameJSON(t, reqs[2].Body, `{"instances":[{"content":"a"},{"content":"b"}],"parameters":{"outputDimensionality":2}}`)
	if n := ts.check(t); n != 1 {
		t.Errorf("%d tokens fetched for three calls; want one, cached", n)
	}
}

// TestVertexTokenRenewal: a token about to expire is replaced before a
// call, not used.
func TestVertexTokenRenewal(t *testing.T) {
	ts := newTokenServer(t)
	ts.expiresIn = 60 // within the early expiry: every call needs a new one
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json",
		`{"candidates":[{"content":{"parts":[{"text":"Hi."}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":5,"candidatesTokenCount":1}}`))
	p := newVertex(t, up.URL, ts)
	for range 3 {
		if _, err := p.Chat(context.Background(), llmtest.Chat("m")); err != nil {
			t.Fatal(err)
		}
	}
	if n := ts.check(t); n != 3 {
		t.Errorf("%d tokens for three calls with short-lived tokens; want 3", n)
	}
	if got := up.Last(t).Header.Get("Authorization"); got != "Bearer ya29.token-3" {
		t.Errorf("last call's Authorization %q; want the newest token", got)
	}
}

// TestVertexTokenRefused: a token endpoint that refuses the credentials is
// an upstream failure blaming tidygate's configuration, quoting neither the
// endpoint's description nor anything of the key; the upstream is not called.
func TestVertexTokenRefused(t *testing.T) {
	ts := newTokenServer(t)
	ts.refuse = "invalid_grant"
	up := llmtest.NewUpstream(t, llmtest.Hang)
	p := newVertex(t, up.URL, ts)
	_, err := p.Chat(context.Background(), llmtest.Chat("m"))
	de := llmtest.RequireError(t, err, domain.KindUpstream)
	if !strings.Contains(de.Message, "vertex") || !strings.Contains(de.Message, "credentials") || strings.Contains(de.Error(), serviceAccount) {
		t.Errorf("message %q", de.Error())
	}
	if len(up.Requests()) != 0 {
		t.Error("the upstream was called without a token")
	}

	// A token endpoint that cannot be reached fails the same way.
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	gone, err := gemini.NewVertex(gemini.VertexOptions{Project: "p", Location: "global",
		CredentialsFile: credentialsFile(t, closed.URL+"/token"), BaseURL: up.URL + "/v1"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = gone.Chat(context.Background(), llmtest.Chat("m"))
	llmtest.RequireKind(t, err, domain.KindUpstream)
}

func TestVertexFailures(t *testing.T) {
	ts := newTokenServer(t)
	llmtest.RunFailureTests(t, llmtest.Wire{
		Provider:   "vertex",
		New:        func(t *testing.T, baseURL string) ports.Provider { return newVertex(t, baseURL, ts) },
		Error:      googleError,
		Embeds:     true,
		Model:      "gemini-2.5-flash",
		EmbedModel: "text-embedding-005",
	})
	ts.check(t)
}

//go:build integration

package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"

	"github.com/tidygate/tidygate/internal/oidctest"
	"github.com/tidygate/tidygate/internal/pgtest"
)

// TestNoSecretsAnywhere runs tidygate with a database password and provider
// keys, makes calls, and searches the log, /metrics, /debug/startup, the
// responses and every MLflow table for them.
func TestNoSecretsAnywhere(t *testing.T) {
	const password = "Pw-9f8e7d6c5b4a"
	admin := pgtest.New(t)
	role := tempRole(t, admin, password)
	u, _ := url.Parse(admin)
	u.User = url.UserPassword(role, password)
	// Single sign-on too: the console client's secret and the tokens of
	// the identity provider, good and bad, are secrets as well.
	fake := oidctest.New(t)
	env := append(signOnEnv(t, u.String(), fake),
		"OPENAI_API_KEY=sk-SECRET-openai-123", "ANTHROPIC_API_KEY=sk-ant-SECRET-456", "DB_PASSWORD="+password,
		"OIDC_CLIENT_ID=console", "OIDC_CLIENT_SECRET=oidc-SECRET-789", "CONSOLE_BASE_URL=http://127.0.0.1:1")
	s := start(t, env)
	token := person(fake, "sub-sec", "sec@example.com", []any{"tidygate-team-audit"}, []any{"tidygate-auditor"})
	badToken := fake.Token(map[string]any{"sub": "x", "aud": "not-tidygate"})
	key := createKey(t, env, "--user", "carol", "--team", "audit")
	// The admin API: an admin key and a key made through it. The create
	// response is the one place a new key's secret is shown, so it is
	// not searched; everything else is.
	adminKey := runAdminKey(t, env, "security", "read,write")
	resp, made := s.do("POST", "/admin/v1/keys", `{"user":"dave","team":"audit"}`, "Authorization", "Bearer "+adminKey)
	if resp.StatusCode != 201 {
		t.Fatalf("admin create: %d %s", resp.StatusCode, made)
	}
	var created struct{ Secret string }
	if err := json.Unmarshal(made, &created); err != nil || created.Secret == "" {
		t.Fatalf("admin create answered %s", made)
	}
	var seen strings.Builder
	for _, path := range []string{"/v1/chat/completions", "/v1/embeddings"} {
		body := chatBody
		if path == "/v1/embeddings" {
			body = `{"model":"mock-embed","input":"x"}`
		}
		resp, b := s.do("POST", path, body, "Authorization", "Bearer "+key)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
		}
		seen.Write(b)
		for k, v := range resp.Header {
			seen.WriteString(k + ": " + strings.Join(v, ",") + "\n")
		}
	}
	_, b := s.do("POST", "/v1/chat/completions", chatBody, "Authorization", "Bearer tg-wrong-key-0000000000000000")
	seen.Write(b)
	waitDiscovered(t, func() int {
		r, _ := s.do("POST", "/v1/chat/completions", chatBody, "Authorization", "Bearer "+token)
		return r.StatusCode
	})
	for _, tok := range []string{token, badToken} {
		_, b = s.do("POST", "/v1/chat/completions", chatBody, "Authorization", "Bearer "+tok)
		seen.Write(b)
		_, b = s.do("GET", "/admin/v1/keys", "", "Authorization", "Bearer "+tok)
		seen.Write(b)
	}
	// Guesses until the address is throttled (AUTH_FAILURE_LIMIT, 20 by
	// default), in every dialect, with a key and with a token: neither the
	// refusals nor the log of the throttled failures show what was presented.
	guessedKey := "tg-throttled-guess-SECRET-0000000000"
	guessedToken := fake.Token(map[string]any{"sub": "guess", "aud": "elsewhere"})
	throttled := 0
	for i := range 24 {
		cred := guessedKey
		if i%2 == 1 {
			cred = guessedToken
		}
		var r *reply
		switch i % 3 {
		case 0:
			r, b = s.do("POST", "/v1/chat/completions", chatBody, "Authorization", "Bearer "+cred)
		case 1:
			r, b = s.do("POST", "/v1/messages", `{"model":"mock-chat","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`,
				"Authorization", "", "x-api-key", cred, "anthropic-version", "2023-06-01")
		default:
			r, b = s.do("POST", "/v1/responses", `{"model":"mock-chat","input":"hi"}`, "Authorization", "Bearer "+cred)
		}
		if r.StatusCode == 429 {
			throttled++
		}
		seen.Write(b)
		for k, v := range r.Header {
			seen.WriteString(k + ": " + strings.Join(v, ",") + "\n")
		}
	}
	if throttled == 0 {
		t.Error("24 failed authentications from one address were never throttled")
	}
	for _, path := range []string{"/metrics", "/debug/startup", "/readyz"} {
		_, b := s.adminGet(path)
		seen.Write(b)
	}
	for _, path := range []string{"/admin/v1/keys", "/admin/v1/audit"} {
		_, b := s.do("GET", path, "", "Authorization", "Bearer "+adminKey)
		seen.Write(b)
	}
	_, b = s.do("GET", "/admin/v1/keys", "", "Authorization", "Bearer tga-wrong-admin-key-000000000000")
	seen.Write(b)
	waitTraces(t, admin, 2)
	seen.WriteString(dumpTables(t, admin, "trace_info", "trace_tags", "trace_request_metadata", "spans", "experiments"))
	if err := s.Stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	seen.WriteString(s.Log())
	seen.WriteString(dumpTables(t, admin, "tidygate_audit_log", "tidygate_admin_keys"))
	// Every admin change is a trace of the admin experiment by the end of
	// the shutdown (its last export), and they are searched too.
	var changes, adminTraces int
	queryRow(t, admin, "SELECT count(*) FROM tidygate_audit_log", &changes)
	queryRow(t, admin, `SELECT count(*) FROM trace_info t JOIN experiments e ON e.experiment_id = t.experiment_id
		WHERE e.name = 'tidygate/admin'`, &adminTraces)
	if changes < 2 || adminTraces != changes {
		t.Errorf("%d admin changes and %d traces of them in MLflow; want one trace per change", changes, adminTraces)
	}
	seen.WriteString(dumpTables(t, admin, "trace_info", "trace_tags", "trace_request_metadata", "spans"))
	for _, secret := range []string{password, "sk-SECRET-openai-123", "sk-ant-SECRET-456", key, DevKey, adminKey, created.Secret,
		"oidc-SECRET-789", token, badToken, strings.Split(token, ".")[2], guessedKey, guessedToken} {
		if strings.Contains(seen.String(), secret) && secret != DevKey {
			t.Errorf("the secret %q appears in logs, responses, metrics or MLflow records", secret)
		}
	}
	// The dev key is documented, and the log announces it on purpose; it
	// must still never reach the MLflow records.
	if strings.Contains(dumpTables(t, admin, "trace_request_metadata", "spans"), DevKey) {
		t.Error("the dev key reached the MLflow records")
	}
}

// tempRole creates a superuser role with a unique name and the password on
// the server of dsn (the test's own database), and drops it, with what it
// owns in that database, when the test ends: roles are server-wide, so a
// role left behind would break the next run against the same server.
// Register it before starting anything that connects as the role, so that
// its cleanup runs after theirs.
func tempRole(t *testing.T, dsn, password string) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	role := fmt.Sprintf("tg_secret_%x", b)
	execSQL(t, dsn, "CREATE ROLE "+role+" LOGIN SUPERUSER PASSWORD '"+password+"'")
	t.Cleanup(func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop role %s: %v", role, err)
			return
		}
		defer conn.Close(ctx)
		// Its sessions first: a role cannot be dropped while it owns objects,
		// and tidygate's connections may still be closing.
		for _, sql := range []string{
			"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '" + role + "'",
			"DROP OWNED BY " + role,
			"DROP ROLE " + role,
		} {
			if _, err := conn.Exec(ctx, sql); err != nil {
				t.Errorf("%s: %v", sql, err)
				return
			}
		}
	})
	return role
}

func execSQL(t *testing.T, dsn, sql string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// dumpTables returns every row of the tables as text.
func dumpTables(t *testing.T, dsn string, tables ...string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var out strings.Builder
	for _, table := range tables {
		rows, err := conn.Query(ctx, "SELECT t::text FROM "+pgx.Identifier{table}.Sanitize()+" t")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			out.WriteString(line + "\n")
		}
	}
	return out.String()
}

// TestTLSVerifyFull connects to a PostgreSQL that only speaks TLS with a
// certificate from a private CA, as RDS does, with sslmode=verify-full.
func TestTLSVerifyFull(t *testing.T) {
	if os.Getenv("CI") != "true" {
		testcontainers.SkipIfProviderIsNotHealthy(t)
	}
	dir := t.TempDir()
	caPEM, certPEM, keyPEM := selfSignedChain(t)
	otherCA, _, _ := selfSignedChain(t)
	writeFile(t, filepath.Join(dir, "ca.pem"), string(caPEM))
	writeFile(t, filepath.Join(dir, "other-ca.pem"), string(otherCA))
	initScript := `#!/bin/sh
set -e
cp /tls/server.crt /tls/server.key "$PGDATA"/
chmod 600 "$PGDATA/server.key"
echo "ssl = on" >> "$PGDATA/postgresql.conf"
# Only TLS from outside: replace the catch-all host rule with hostssl.
sed -i 's/^host all all all scram-sha-256/hostssl all all all scram-sha-256/' "$PGDATA/pg_hba.conf"
`
	addr := freeAddrs(t, 1)[0]
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ctr, err := tcpostgres.Run(ctx, pgtest.Image(),
		tcpostgres.WithDatabase("app"), tcpostgres.WithUsername("app"), tcpostgres.WithPassword("app"),
		tcpostgres.BasicWaitStrategies(),
		testcontainers.WithFiles(
			testcontainers.ContainerFile{Reader: strings.NewReader(string(certPEM)), ContainerFilePath: "/tls/server.crt", FileMode: 0o644},
			testcontainers.ContainerFile{Reader: strings.NewReader(string(keyPEM)), ContainerFilePath: "/tls/server.key", FileMode: 0o644},
			testcontainers.ContainerFile{Reader: strings.NewReader(initScript), ContainerFilePath: "/docker-entrypoint-initdb.d/ssl.sh", FileMode: 0o755},
		),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.PortBindings = network.PortMap{network.MustParsePort("5432/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: port}}}
		}),
	)
	testcontainers.CleanupContainer(t, ctr)
	if err != nil {
		t.Fatal(err)
	}
	dbEnv := func(ca string) []string {
		var env []string // no DATABASE_URL: the DB_* parts, as operators on RDS write them
		for _, kv := range baseEnv(t, "") {
			if !strings.HasPrefix(kv, "DATABASE_URL=") {
				env = append(env, kv)
			}
		}
		return append(env, "DB_HOST="+host, "DB_PORT="+port, "DB_USER=app", "DB_PASSWORD=app", "DB_NAME=app",
			"DB_SSLMODE=verify-full", "DB_SSLROOTCERT="+ca, "DB_CONNECT_TIMEOUT=2s", "DB_POOL_ACQUIRE_TIMEOUT=2s")
	}
	s := start(t, dbEnv(filepath.Join(dir, "ca.pem")))
	if resp, body := s.do("POST", "/v1/chat/completions", chatBody); resp.StatusCode != 200 {
		t.Fatalf("over TLS: %d %s", resp.StatusCode, body)
	}
	dsn := "postgres://app:app@" + addr + "/app?sslmode=verify-full&sslrootcert=" + filepath.Join(dir, "ca.pem")
	var plain int
	queryRow(t, dsn, `SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
		WHERE a.application_name LIKE 'tidygate-%' AND NOT s.ssl`, &plain)
	if plain != 0 {
		t.Fatalf("%d tidygate connections without TLS", plain)
	}
	untrusting := startNoWait(t, dbEnv(filepath.Join(dir, "other-ca.pem")))
	waitStatus(t, untrusting, "/readyz", 503, 20*time.Second)
}

// selfSignedChain returns a CA certificate and a server certificate and key
// for 127.0.0.1 and localhost, signed by that CA, all PEM-encoded.
func selfSignedChain(t *testing.T) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tidygate test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caTmpl, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

// TestAdminAddressSeparatesDebugAndMetrics serves /metrics and /debug/* on
// ADMIN_ADDR only: the API address keeps the probes, and its /readyz gives
// the verdict without reasons. Go's profiles (/debug/pprof/) are served on
// the admin address only.
func TestAdminAddressSeparatesDebugAndMetrics(t *testing.T) {
	s := start(t, baseEnv(t, pgtest.New(t)))
	for path, want := range map[string]int{"/metrics": 404, "/debug/startup": 404, "/debug/pprof/": 404, "/readyz": 200, "/healthz": 200} {
		if resp, _ := s.do("GET", path, ""); resp.StatusCode != want {
			t.Errorf("API address %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	if _, body := s.do("GET", "/readyz", ""); strings.TrimSpace(string(body)) != `{"status":"ready"}` {
		t.Errorf("API address /readyz: %s, want the status only", body)
	}
	for _, path := range []string{"/metrics", "/debug/startup", "/readyz", "/debug/pprof/", "/debug/pprof/heap"} {
		if code, _ := s.adminGet(path); code != 200 {
			t.Errorf("admin address %s: %d, want 200", path, code)
		}
	}
}

// TestUnreachableDatabaseStaysUnnamed starts tidygate against a database
// that refuses connections and asks every unauthenticated endpoint on both
// addresses, and an API call: none names the database's host, port, name
// or user.
func TestUnreachableDatabaseStaysUnnamed(t *testing.T) {
	// The database's address and tidygate's two are picked together, so
	// that none is another.
	addrs := freeAddrs(t, 3)
	addr := addrs[0]
	_, port, _ := net.SplitHostPort(addr)
	env := envAt(t, "postgres://tg_hidden_user:pw@"+addr+"/tg_hidden_db?sslmode=disable", addrs[1], addrs[2])
	s := startNoWait(t, append(env, "DB_CONNECT_TIMEOUT=1s", "DB_POOL_ACQUIRE_TIMEOUT=1s"))
	waitStatus(t, s, "/readyz", 503, 20*time.Second)
	var seen strings.Builder
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/debug/startup"} {
		_, b := s.do("GET", path, "", "Authorization", "")
		seen.Write(b)
		_, b = s.adminGet(path)
		seen.Write(b)
	}
	_, b := s.do("POST", "/v1/chat/completions", chatBody)
	seen.Write(b)
	for _, detail := range []string{"tg_hidden_user", "tg_hidden_db", addr, ":" + port} {
		if strings.Contains(seen.String(), detail) {
			t.Errorf("an unauthenticated answer reveals %q:\n%s", detail, seen.String())
		}
	}
}

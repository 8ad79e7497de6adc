//go:build integration

package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tidygate/tidygate/internal/logtest"
	"github.com/tidygate/tidygate/internal/pgtest"
)

// browserStepTimeout bounds one step in the browser: a page load, a form
// filled in, a value read. A step that runs out fails the test with the
// page it was on, so a wrong selector or an unexpected page never hangs.
const browserStepTimeout = 15 * time.Second

// browserRunTimeout bounds the browser's whole life, its start included.
const browserRunTimeout = 2 * time.Minute

// TestConsoleInABrowser drives the console in headless Chromium as an
// administrator would: sign in with an admin key, create a key with the
// form, find it in the list, revoke it with a reason, and find both changes
// in the audit log. Each step's screenshot is kept (see artifactsDir).
func TestConsoleInABrowser(t *testing.T) {
	chromium := chromiumPath(t)
	dsn := pgtest.New(t)
	env := baseEnv(t, dsn)
	s := start(t, env)
	adminKey := runAdminKey(t, env, "console", "read,write")
	b := newConsoleBrowser(t, chromium, artifactsDir(t, "console"))

	b.load("sign-in page", http.StatusOK, chromedp.Navigate(s.URL+"/console/sign-in"))
	b.do("sign-in form", chromedp.WaitVisible(chromedp.ID("admin_key")))
	b.shot("01-sign-in")

	b.load("sign in", http.StatusOK,
		chromedp.SendKeys(chromedp.ID("admin_key"), adminKey),
		chromedp.Click(chromedp.CSS(`form[method="post"][action="/console/sign-in"] button[type="submit"]`)))
	b.wantText("home page", chromedp.CSS("h1"), "Console")
	admin := b.text("who is signed in", chromedp.CSS(".who strong"))
	if !strings.HasPrefix(admin, "admin_key:") {
		t.Fatalf("signed in as %q, want the admin key's actor admin_key:…", admin)
	}
	b.shot("02-signed-in")

	b.load("keys page", http.StatusOK, chromedp.Click(chromedp.CSS(`nav a[href="/console/keys"]`)))
	b.do("fill in the create form",
		chromedp.WaitVisible(chromedp.ID("c_user")),
		chromedp.SendKeys(chromedp.ID("c_user"), "ada"),
		chromedp.SendKeys(chromedp.ID("c_team"), "risk"),
		chromedp.SendKeys(chromedp.ID("c_models"), "mock-chat"),
		chromedp.SendKeys(chromedp.ID("c_rpm"), "60"),
		chromedp.SendKeys(chromedp.ID("c_daily"), "5"),
		chromedp.SendKeys(chromedp.ID("create_reason"), "onboarding ada from the console"))
	b.shot("03-create-form")

	b.load("create the key", http.StatusCreated,
		chromedp.Click(chromedp.CSS(`form[method="post"][action="/console/keys"] button[type="submit"]`)))
	b.wantText("secret page", chromedp.CSS("h1"), "Key created")
	id := b.text("the new key's ID", chromedp.CSS(`#main a[href^="/console/keys/key_"]`))
	secret := b.value("the new key's secret", chromedp.ID("secret"))
	if !strings.HasPrefix(id, "key_") || !strings.HasPrefix(secret, "tg-") {
		t.Fatalf("the secret page shows key %q with secret %q, want key_… and tg-…", id, secret)
	}
	b.shot("04-key-created")
	if resp, body := s.do("POST", "/v1/chat/completions", chatBody, "Authorization", "Bearer "+secret); resp.StatusCode != http.StatusOK {
		t.Fatalf("a chat call with the key created in the console: %d %s", resp.StatusCode, body)
	}

	b.load("back to the keys", http.StatusOK, chromedp.Click(chromedp.CSS(`#main a[href="/console/keys"]`)))
	row := b.text("the new key's row", chromedp.CSS(`tbody tr:has(a[href="/console/keys/`+id+`"])`))
	for _, want := range []string{id, "ada", "risk", "active", "mock-chat"} {
		if !strings.Contains(row, want) {
			t.Errorf("the keys page's row of %s reads %q, want it to name %q", id, row, want)
		}
	}
	b.shot("05-key-listed")

	b.load("the key's page", http.StatusOK, chromedp.Click(chromedp.CSS(`tbody a[href="/console/keys/`+id+`"]`)))
	b.wantText("the key's state", chromedp.CSS("dd.state"), "active")
	b.do("fill in the revoke form",
		chromedp.WaitVisible(chromedp.ID("revoke_reason")),
		chromedp.SendKeys(chromedp.ID("revoke_reason"), "ada left the risk team"))
	b.shot("06-revoke-form")
	b.load("revoke the key", http.StatusOK,
		chromedp.Click(chromedp.CSS(`form[method="post"][action="/console/keys/`+id+`/revoke"] button[type="submit"]`)))
	b.wantText("the revoked key's state", chromedp.CSS("dd.state"), "revoked")
	b.do("no forms on a revoked key", chromedp.WaitNotPresent(chromedp.ID("revoke_reason")))
	b.shot("07-key-revoked")

	b.load("audit log", http.StatusOK, chromedp.Click(chromedp.CSS(`nav a[href="/console/audit"]`)))
	b.load("audit log of the key", http.StatusOK,
		chromedp.SendKeys(chromedp.ID("a_target"), id),
		chromedp.Click(chromedp.CSS(`form[action="/console/audit"] button[type="submit"]`)))
	entries := []struct{ action, reason string }{ // newest first
		{"key.revoke", "ada left the risk team"},
		{"key.create", "onboarding ada from the console"},
	}
	for i, e := range entries {
		cell := func(col int) string {
			return b.text(fmt.Sprintf("audit entry %d, column %d", i+1, col),
				chromedp.CSS(fmt.Sprintf("tbody tr:nth-child(%d) > :nth-child(%d)", i+1, col)))
		}
		if who, action, target, reason := cell(3), cell(4), cell(5), cell(6); who != admin || action != e.action || target != id || reason != e.reason {
			t.Errorf("audit entry %d: %s %s on %s because %q, want %s %s on %s because %q",
				i+1, who, action, target, reason, admin, e.action, id, e.reason)
		}
	}
	b.do("no other audit entry of the key",
		chromedp.WaitNotPresent(chromedp.CSS(fmt.Sprintf("tbody tr:nth-child(%d)", len(entries)+1))))
	b.shot("08-audit")
}

// chromiumPath returns Debian's chromium. Without it the test skips, or, in
// CI, fails: there a browser test must not pass by not running.
func chromiumPath(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err == nil {
		return path
	}
	why := "no chromium on PATH, so the console cannot be tested in a browser " +
		"(install Debian's package as root: apt-get install -y chromium; .ci/run does)"
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true, so the browser test must run, but there is %s", why)
	}
	t.Skip(why)
	return ""
}

// artifactsDir returns the emptied directory where the test named name
// keeps what it leaves for people to look at: $TEST_ARTIFACTS_DIR/name, or
// bin/artifacts/name in the repository, which survive the run.
func artifactsDir(t *testing.T, name string) string {
	t.Helper()
	root := os.Getenv("TEST_ARTIFACTS_DIR")
	if root == "" {
		root = filepath.Join("..", "bin", "artifacts")
	}
	dir, err := filepath.Abs(filepath.Join(root, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// consoleBrowser is one tab of a headless Chromium. Each of its steps is
// bounded by browserStepTimeout; a step that fails or runs out ends the
// test with the tab's address, its HTML, a screenshot and the browser's
// output, so that a failure can be read instead of waited for.
type consoleBrowser struct {
	t      *testing.T
	ctx    context.Context // the tab
	dir    string          // where screenshots go
	output *logtest.Buffer // the browser's stdout and stderr
}

// newConsoleBrowser starts chromium headless, without the sandbox (CI runs
// as root), with a fresh profile, and opens its tab.
func newConsoleBrowser(t *testing.T, chromium, dir string) *consoleBrowser {
	t.Helper()
	b := &consoleBrowser{t: t, dir: dir, output: &logtest.Buffer{}}
	run, cancelRun := context.WithTimeout(context.Background(), browserRunTimeout)
	alloc, cancelAlloc := chromedp.NewExecAllocator(run,
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.CombinedOutput(b.output))
	tab, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelTab(); cancelAlloc(); cancelRun() })
	b.ctx = tab
	start := time.Now()
	if err := chromedp.Do(tab); err != nil { // starts the browser within browserRunTimeout
		t.Fatalf("start %s: %v\nits output:\n%s", chromium, err, b.output)
	}
	t.Logf("browser started in %v", time.Since(start).Round(time.Millisecond))
	return b
}

// step returns the context of one step, bounded by browserStepTimeout, and
// the func that ends it and logs how long it took.
func (b *consoleBrowser) step(name string) (context.Context, func()) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	return ctx, func() {
		cancel()
		b.t.Logf("browser step %q: %v", name, time.Since(start).Round(time.Millisecond))
	}
}

// do runs actions as one step.
func (b *consoleBrowser) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, done := b.step(step)
	defer done()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail(step, err)
	}
}

// load runs actions that load a page (a navigation, a click on a link or a
// submit button) and waits for it, which must answer with status (a
// redirect's target: its status).
func (b *consoleBrowser) load(step string, status int, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, done := b.step(step)
	defer done()
	resp, err := chromedp.RunResponse(ctx, actions...)
	if err != nil {
		b.fail(step, err)
	}
	if resp.Status != int64(status) {
		b.fail(step, fmt.Errorf("%s answered %d, want %d", resp.URL, resp.Status, status))
	}
}

// text returns the visible text of the element sel selects.
func (b *consoleBrowser) text(step string, sel chromedp.CSS) string {
	b.t.Helper()
	return b.read(step, chromedp.Text(sel, chromedp.NodeVisible))
}

// value returns the value of the form control with the id.
func (b *consoleBrowser) value(step string, id chromedp.ID) string {
	b.t.Helper()
	return b.read(step, chromedp.Value(id, chromedp.NodeVisible))
}

// wantText fails the test unless the element sel selects reads want.
func (b *consoleBrowser) wantText(step string, sel chromedp.CSS, want string) {
	b.t.Helper()
	if got := b.text(step, sel); got != want {
		b.fail(step, fmt.Errorf("%s reads %q, want %q", sel, got, want))
	}
}

// read runs one action that returns a string, as one step.
func (b *consoleBrowser) read(step string, action chromedp.Action[string]) string {
	b.t.Helper()
	ctx, done := b.step(step)
	defer done()
	v, err := chromedp.Run(ctx, action)
	if err != nil {
		b.fail(step, err)
	}
	return strings.TrimSpace(v)
}

// shot saves a screenshot of the whole page as name.png.
func (b *consoleBrowser) shot(name string) {
	b.t.Helper()
	if err := b.saveShot(name); err != nil {
		b.fail("screenshot "+name, err)
	}
}

func (b *consoleBrowser) saveShot(name string) error {
	ctx, done := b.step("screenshot " + name)
	defer done()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(b.dir, name+".png"), png, 0o644)
}

// fail ends the test at step with what the tab shows: its address, its
// HTML and a screenshot (failed.png), and the browser's output.
func (b *consoleBrowser) fail(step string, err error) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	url, uerr := chromedp.Run(ctx, chromedp.Location())
	if uerr != nil {
		url = "(unknown: " + uerr.Error() + ")"
	}
	html, herr := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if herr != nil {
		html = "(unknown: " + herr.Error() + ")"
	}
	shot := filepath.Join(b.dir, "failed.png")
	if serr := b.saveShot("failed"); serr != nil {
		shot = "(none: " + serr.Error() + ")"
	}
	b.t.Fatalf("browser step %q: %v\nthe tab is at %s; screenshot %s; its HTML:\n%s\nthe browser's output:\n%s",
		step, err, url, shot, html, b.output)
}

//go:build integration

package integration

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/pgtest"
)

// previousRelease is the commit of the release before this one: during a
// rolling upgrade its replicas keep serving on the database the new
// version has migrated. Move it forward with each release.
const previousRelease = "547d8101dd53c5513fed02309ebdb0da445c960a"

// buildPrevious builds the previous release's binary from the repository's
// history. Without the history (a shallow clone) the test cannot run: it
// fails in CI and is skipped elsewhere.
func buildPrevious(t *testing.T) string {
	t.Helper()
	if err := exec.Command("git", "-C", "..", "cat-file", "-e", previousRelease+"^{commit}").Run(); err != nil {
		msg := "the previous release " + previousRelease + " is not in this clone's history (a shallow clone?): fetch it with git fetch --unshallow"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	src := t.TempDir()
	archive := exec.Command("sh", "-c", `git -C .. archive --format=tar "$1" | tar -x -C "$2"`, "sh", previousRelease, src)
	if out, err := archive.CombinedOutput(); err != nil {
		t.Fatalf("extract %s: %v\n%s", previousRelease, err, out)
	}
	bin := filepath.Join(t.TempDir(), "tidygate-previous")
	build := exec.Command("go", "build", "-o", bin, "./cmd/app")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the previous release: %v\n%s", err, out)
	}
	return bin
}

// A rolling upgrade: the new version migrates the database (expand only),
// and replicas of the previous release, started before or after that,
// serve calls side by side with the new ones on the one database.
func TestRollingUpgradeBesideThePreviousRelease(t *testing.T) {
	previous := buildPrevious(t)
	dsn := pgtest.New(t)

	before := launch(t, previous, baseEnv(t, dsn))
	before.waitReady(90 * time.Second)
	current := start(t, baseEnv(t, dsn)) // migrates the schema the previous release made
	after := launch(t, previous, baseEnv(t, dsn))
	after.waitReady(90 * time.Second) // a previous replica restarted mid-upgrade

	for round := range 3 {
		for name, s := range map[string]*service{"previous, started first": before, "new": current, "previous, started after the migration": after} {
			if rep, body := s.do("POST", "/v1/chat/completions", chatBody); rep.StatusCode != http.StatusOK {
				t.Fatalf("round %d, %s: status %d: %s", round, name, rep.StatusCode, body)
			}
		}
	}
	for _, s := range []*service{before, after, current} {
		if err := s.Stop(30 * time.Second); err != nil {
			t.Errorf("stop: %v\n%s", err, s.Log())
		}
	}
	waitTraces(t, dsn, 9)
}

package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tidygate/tidygate/internal/adapters/memory"
	"github.com/tidygate/tidygate/internal/adapters/ratelimit"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
	"github.com/tidygate/tidygate/internal/infra"
)

// modelM is the head of a chat model m's entry.
const modelM = `  - name: m
    type: chat
    max_output_tokens: 100
    price_per_million: {input: "1", output: "2"}
`

// weightedCatalogue is a catalogue with one chat model m over two mock
// instances, mock-a and mock-b, with the weights given.
func weightedCatalogue(a, b int) string {
	return "providers:\n  - {name: mock-a, type: mock}\n  - {name: mock-b, type: mock}\nmodels:\n" + modelM +
		fmt.Sprintf("    deployments:\n      - {provider: mock-a, upstream: m-a, weight: %d}\n      - {provider: mock-b, upstream: m-b, weight: %d}\n", a, b)
}

// brokenCatalogue has two problems: a negative weight and an unknown provider.
const brokenCatalogue = "providers:\n  - {name: mock-a, type: mock}\nmodels:\n" + modelM +
	"    deployments:\n      - {provider: mock-a, upstream: m-a, weight: -1}\n" +
	"  - {name: n, type: chat, provider: nowhere, max_output_tokens: 100, free: true}\n"

// reloadRig is a gateway service built from a catalogue file as serve
// builds it, with its reloader, the reloader's log and its metrics.
type reloadRig struct {
	path string
	svc  *gateway.Service
	r    *catalogueReloader
	log  *bytes.Buffer
	reg  *prometheus.Registry
}

func newReloadRig(t *testing.T, catalogue string) *reloadRig {
	t.Helper()
	path := filepath.Join(t.TempDir(), "catalogue.yaml")
	writeFile(t, path, catalogue)
	cfg := infra.Config{CatalogueFile: path}
	ps, problems := loadProviderSettings(map[string]string{})
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	ctx := bootContext{context.Background()}
	cat, err := loadCatalogue(cfg.CatalogueFile, ps)
	if err != nil {
		t.Fatal(err)
	}
	providers, err := newProviders(ctx, cfg, ps, cat)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := gateway.NewService(gateway.Deps{Catalogue: cat.Models, Providers: providers, Caps: cat.Caps(), Breaker: cat.Breaker,
		Keys: memory.NewKeyStore(), Ledger: memory.NewLedger(), Limiter: ratelimit.New(), CallLog: memory.NewCallLog()},
		gateway.Options{MaxConcurrentCalls: 64, MaxConcurrentPerKey: 64, MaxConcurrentPerTeam: 64})
	if err != nil {
		t.Fatal(err)
	}
	rig := &reloadRig{path: path, svc: svc, log: &bytes.Buffer{}, reg: prometheus.NewRegistry()}
	d := &infra.Delegate{Logger: slog.New(slog.NewTextHandler(rig.log, nil)), Registry: rig.reg}
	rig.r = newCatalogueReloader(ctx, cfg, ps, d, cat, providers, svc)
	return rig
}

// writeFile replaces path by a rename, as editors and ConfigMaps do.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

var reloadCaller = domain.Caller{KeyID: "key_1", User: "alice", Team: "risk"}

// call makes one chat call on m and returns the provider that answered.
func (rig *reloadRig) call(i int) (string, error) {
	res, err := rig.svc.Chat(context.Background(), gateway.Call{RequestID: fmt.Sprintf("req-%d", i), Caller: reloadCaller, AuditReason: "reload test"},
		domain.ChatRequest{Model: "m", Messages: []domain.Message{{Role: domain.RoleUser, Content: "hello"}}})
	return res.Model.Provider, err
}

func (rig *reloadRig) reloads(t *testing.T) map[string]float64 {
	t.Helper()
	return counters(t, rig.reg, "tidygate_catalogue_reloads_total")
}

func TestReloadRefusesABadFileWithOneLinePerProblem(t *testing.T) {
	rig := newReloadRig(t, weightedCatalogue(3, 1))
	writeFile(t, rig.path, brokenCatalogue)
	if rig.r.reload("test") {
		t.Fatal("a broken catalogue was swapped in")
	}
	_, startup := loadCatalogue(rig.path, testProviderSettings(t))
	want := strings.Split(startup.Error(), "\n")
	if len(want) != 2 {
		t.Fatalf("startup reports %d problems, want 2: %q", len(want), want)
	}
	lines := strings.Split(strings.TrimSpace(rig.log.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("the refusal logged %d lines, want %d (one per problem):\n%s", len(lines), len(want), rig.log)
	}
	for i, p := range want {
		if !strings.Contains(lines[i], fmt.Sprintf("problem=%q", p)) {
			t.Errorf("log line %d = %s; want problem %q, as startup says it", i, lines[i], p)
		}
	}
	if _, err := rig.call(1); err != nil {
		t.Errorf("after a refused reload the old catalogue's model failed: %v", err)
	}
	if got, want := rig.reloads(t), map[string]float64{"result=ok": 0, "result=refused": 1}; !maps.Equal(got, want) {
		t.Errorf("reloads = %v, want %v", got, want)
	}
}

// TestReloadChecksCredentialsAsStartDoes: a reload runs the check serve
// runs before it starts, so a new instance whose api_key_env names a
// variable the process does not have is refused, on one line naming the
// file, the entry and the key, though no model uses it.
func TestReloadChecksCredentialsAsStartDoes(t *testing.T) {
	rig := newReloadRig(t, weightedCatalogue(3, 1))
	writeFile(t, rig.path, strings.Replace(weightedCatalogue(3, 1), "providers:\n",
		"providers:\n  - {name: spare, type: openai, api_key_env: NO_SUCH_VAR_XYZ}\n", 1))
	if rig.r.reload("test") {
		t.Fatal("a catalogue naming an unset key variable was swapped in")
	}
	want := rig.path + `: providers[0] "spare": api_key_env: the variable NO_SUCH_VAR_XYZ is not set (line 2)`
	if lines := strings.Split(strings.TrimSpace(rig.log.String()), "\n"); len(lines) != 1 || !strings.Contains(lines[0], fmt.Sprintf("problem=%q", want)) {
		t.Errorf("the refusal logged:\n%s\nwant one line with problem %q", rig.log, want)
	}
	if _, err := rig.call(1); err != nil {
		t.Errorf("after a refused reload the old catalogue's model failed: %v", err)
	}
}

func TestReloadTakesAChangedFileAtThePoll(t *testing.T) {
	rig := newReloadRig(t, weightedCatalogue(3, 1)+"  - {name: spare, type: chat, provider: mock, max_output_tokens: 10, free: true}\n")
	rig.r.poll() // unchanged: nothing to do
	writeFile(t, rig.path, weightedCatalogue(3, 1)+"  - {name: other, type: chat, provider: mock, max_output_tokens: 10, free: true}\n")
	kept := rig.r.providers
	rig.r.poll()
	rig.r.poll() // seen already
	if got, want := rig.reloads(t), map[string]float64{"result=ok": 1, "result=refused": 0}; !maps.Equal(got, want) {
		t.Fatalf("reloads = %v, want %v", got, want)
	}
	if _, err := rig.svc.Chat(context.Background(), gateway.Call{RequestID: "r1", Caller: reloadCaller, AuditReason: "reload test"},
		domain.ChatRequest{Model: "other", Messages: []domain.Message{{Role: domain.RoleUser, Content: "hello"}}}); err != nil {
		t.Errorf("the reloaded model: %v", err)
	}
	for _, name := range []string{"mock-a", "mock-b", "mock"} {
		if rig.r.providers[name] != kept[name] {
			t.Errorf("provider %s was rebuilt though its settings did not change", name)
		}
	}
}

func TestReloadRebuildsAChangedProvider(t *testing.T) {
	rig := newReloadRig(t, weightedCatalogue(3, 1))
	kept := rig.r.providers
	writeFile(t, rig.path, strings.Replace(weightedCatalogue(3, 1), "{name: mock-b, type: mock}", "{name: mock-b, type: mock, rpm: 5}", 1))
	if !rig.r.reload("test") {
		t.Fatalf("reload refused:\n%s", rig.log)
	}
	if rig.r.providers["mock-a"] != kept["mock-a"] {
		t.Error("mock-a was rebuilt though its settings did not change")
	}
	if rig.r.providers["mock-b"] == kept["mock-b"] {
		t.Error("mock-b was kept though its settings changed")
	}
}

// TestReloadUnderSteadyLoad calls the gateway from several goroutines
// without pause while the weights are swapped and then a broken file is
// refused: no call fails, and each phase's calls follow its weights.
func TestReloadUnderSteadyLoad(t *testing.T) {
	rig := newReloadRig(t, weightedCatalogue(99, 1))
	const workers, perPhase = 4, 400
	var (
		phase    atomic.Int32
		made     atomic.Int64
		mu       sync.Mutex
		answered [3]map[string]int
		failed   []error
		wg       sync.WaitGroup
	)
	for i := range answered {
		answered[i] = map[string]int{}
	}
	stop := make(chan struct{})
	progress := make(chan struct{}, 1) // a call ended
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := phase.Load()
				got, err := rig.call(w*1_000_000 + i)
				mu.Lock()
				if err != nil {
					failed = append(failed, err)
				} else {
					answered[p][got]++
				}
				mu.Unlock()
				made.Add(1)
				select {
				case progress <- struct{}{}:
				default:
				}
			}
		}()
	}
	waitFor := func(n int64) {
		for start := made.Load(); made.Load() < start+n; {
			<-progress
		}
	}
	waitFor(perPhase)
	writeFile(t, rig.path, weightedCatalogue(1, 99))
	if !rig.r.reload("test") {
		t.Errorf("the new weights were refused:\n%s", rig.log)
	}
	phase.Store(1)
	waitFor(perPhase)
	writeFile(t, rig.path, brokenCatalogue)
	if rig.r.reload("test") {
		t.Error("a broken file was swapped in")
	}
	phase.Store(2)
	waitFor(perPhase)
	close(stop)
	wg.Wait()

	if len(failed) > 0 {
		t.Fatalf("%d calls failed during reloads, the first: %v", len(failed), failed[0])
	}
	t.Logf("answers by phase (old 99:1, new 1:99, broken file refused): %v", answered)
	for p, want := range []string{"mock-a", "mock-b", "mock-b"} {
		total := answered[p]["mock-a"] + answered[p]["mock-b"]
		if total < perPhase/2 {
			t.Fatalf("phase %d: only %d calls", p, total)
		}
		if share := float64(answered[p][want]) / float64(total); share < 0.9 {
			t.Errorf("phase %d: %s answered %.1f %% of %d calls; want nearly all", p, want, 100*share, total)
		}
	}
	if got, want := rig.reloads(t), map[string]float64{"result=ok": 1, "result=refused": 1}; !maps.Equal(got, want) {
		t.Errorf("reloads = %v, want %v", got, want)
	}
}

// TestReloadRunsOnSIGHUP feeds the reloader's loop a SIGHUP, with a poll
// too rare to happen, and checks the file was reloaded; a second SIGHUP
// reloads the same content again, as an operator asked for it.
func TestReloadRunsOnSIGHUP(t *testing.T) {
	rig := newReloadRig(t, weightedCatalogue(3, 1))
	writeFile(t, rig.path, weightedCatalogue(1, 3))
	ctx, cancel := context.WithCancel(context.Background())
	hup := make(chan os.Signal)
	done := make(chan struct{})
	go func() { defer close(done); rig.r.run(ctx, hup, time.Hour) }()
	hup <- syscall.SIGHUP
	hup <- syscall.SIGHUP
	hup <- syscall.SIGHUP // taken once the second reload has ended
	cancel()
	<-done
	if got := rig.reloads(t)["result=ok"]; got < 2 {
		t.Errorf("%v reloads after three SIGHUPs; want at least 2", got)
	}
}

// TestReloadReportsAMissingFileOnce removes the file: the poll refuses it
// once, not at every poll, and the catalogue in use keeps serving.
func TestReloadReportsAMissingFileOnce(t *testing.T) {
	rig := newReloadRig(t, weightedCatalogue(3, 1))
	if err := os.Remove(rig.path); err != nil {
		t.Fatal(err)
	}
	rig.r.poll()
	rig.r.poll()
	if got, want := rig.reloads(t), map[string]float64{"result=ok": 0, "result=refused": 1}; !maps.Equal(got, want) {
		t.Errorf("reloads = %v, want %v", got, want)
	}
	if _, err := rig.call(1); err != nil {
		t.Errorf("with the file gone the catalogue in use failed: %v", err)
	}
}

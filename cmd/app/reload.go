package main

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/tidygate/tidygate/internal/gateway"
	"github.com/tidygate/tidygate/internal/infra"
	"github.com/tidygate/tidygate/internal/ports"
)

// reloadPoll is how often the reloader looks at CATALOGUE_FILE's content.
// Hashing the content, rather than watching the file, sees editors that
// replace the file by a rename and Kubernetes ConfigMap symlink swaps alike.
const reloadPoll = 3 * time.Second

// catalogueReloader reloads CATALOGUE_FILE on SIGHUP and when its content
// changes: the file is loaded and validated as at startup, the providers
// it names are built (an instance whose settings did not change is kept),
// and the gateway swaps the result in at once. A file that fails is
// refused, one log line per problem, and the catalogue in use keeps serving.
type catalogueReloader struct {
	ctx     bootContext
	cfg     infra.Config
	ps      providerSettings
	svc     *gateway.Service
	logger  *slog.Logger
	reloads *prometheus.CounterVec

	mu        sync.Mutex // one reload at a time
	current   infra.Catalogue
	providers map[string]ports.Provider
	seen      [sha256.Size]byte // the content last looked at, loaded or refused
}

func newCatalogueReloader(ctx bootContext, cfg infra.Config, ps providerSettings, d *infra.Delegate, cat infra.Catalogue,
	providers map[string]ports.Provider, svc *gateway.Service) *catalogueReloader {
	r := &catalogueReloader{ctx: ctx, cfg: cfg, ps: ps, svc: svc, logger: d.Logger.With("component", "catalogue"),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tidygate_catalogue_reloads_total",
			Help: "Catalogue reloads, by result: ok, or refused (the file failed and the catalogue in use kept serving)."}, []string{"result"}),
		current: cat, providers: providers}
	d.Registry.MustRegister(r.reloads)
	r.reloads.WithLabelValues("ok").Add(0)
	r.reloads.WithLabelValues("refused").Add(0)
	r.seen, _ = r.look()
	return r
}

// look hashes the file's content, or the error reading it, so that a file
// that cannot be read is reported once, not at every poll.
func (r *catalogueReloader) look() ([sha256.Size]byte, bool) {
	data, err := os.ReadFile(r.cfg.CatalogueFile)
	if err != nil {
		return sha256.Sum256([]byte("error: " + err.Error())), false
	}
	return sha256.Sum256(data), true
}

// poll reloads the file when its content changed since it was last looked at.
func (r *catalogueReloader) poll() {
	r.mu.Lock()
	h, _ := r.look()
	changed := h != r.seen
	r.mu.Unlock()
	if changed {
		r.reload("file changed")
	}
}

// reload loads, validates and swaps in the file; it reports whether the
// new catalogue is in use.
func (r *catalogueReloader) reload(why string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen, _ = r.look()
	cat, err := loadCatalogue(r.cfg.CatalogueFile, r.ps)
	var providers map[string]ports.Provider
	if err == nil {
		providers, err = buildProviders(r.ctx, r.cfg, r.ps, cat, r.kept(cat))
	}
	if err == nil {
		err = r.svc.Reload(gateway.Routing{Catalogue: cat.Models, Providers: providers, Caps: cat.Caps(), Breaker: cat.Breaker})
	}
	if err != nil {
		for line := range strings.SplitSeq(strings.TrimSpace(err.Error()), "\n") {
			r.logger.Error("catalogue reload refused; the catalogue in use keeps serving", "why", why, "problem", line)
		}
		r.reloads.WithLabelValues("refused").Inc()
		return false
	}
	r.current, r.providers = cat, providers
	r.reloads.WithLabelValues("ok").Inc()
	r.logger.Info("catalogue reloaded", "why", why, "file", r.cfg.CatalogueFile, "models", len(cat.Models.Models()))
	return true
}

// kept returns the providers in use whose settings are the same in next:
// a named instance described alike, or a type's implicit instance (its
// settings come from the environment, which a reload does not reread).
func (r *catalogueReloader) kept(next infra.Catalogue) func(string) ports.Provider {
	return func(name string) ports.Provider {
		p := r.providers[name]
		if p == nil {
			return nil
		}
		was, wasNamed := instance(r.current, name)
		now, isNamed := instance(next, name)
		if wasNamed != isNamed || !reflect.DeepEqual(was, now) {
			return nil
		}
		return p
	}
}

func instance(cat infra.Catalogue, name string) (infra.ProviderInstance, bool) {
	for _, p := range cat.Providers {
		if p.Name == name {
			return p, true
		}
	}
	return infra.ProviderInstance{}, false
}

// run reloads on SIGHUP and at every poll until ctx ends.
func (r *catalogueReloader) run(ctx context.Context, hup <-chan os.Signal, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			r.reload("SIGHUP")
		case <-tick.C:
			r.poll()
		}
	}
}

// startCatalogueReloader runs the reloader from start to stop, when the
// catalogue comes from CATALOGUE_FILE (the built-in one has nothing to reload).
func startCatalogueReloader(lc fx.Lifecycle, cfg infra.Config, d *infra.Delegate, r *catalogueReloader) {
	if cfg.CatalogueFile == "" {
		d.Logger.Info("catalogue reload off: the built-in catalogue is in use (set CATALOGUE_FILE)")
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	hup := make(chan os.Signal, 1)
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			signal.Notify(hup, syscall.SIGHUP)
			go func() { defer close(done); r.run(ctx, hup, reloadPoll) }()
			d.Logger.Info("catalogue reload on", "file", cfg.CatalogueFile, "on", "SIGHUP and content change", "poll", reloadPoll)
			return nil
		},
		OnStop: func(context.Context) error {
			signal.Stop(hup)
			cancel()
			<-done
			return nil
		},
	})
}

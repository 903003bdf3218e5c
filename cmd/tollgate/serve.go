package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"

	"github.com/tollgate-gw/tollgate/internal/admin"
	"github.com/tollgate-gw/tollgate/internal/alert"
	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/gateway"
	"github.com/tollgate-gw/tollgate/internal/meter"
	"github.com/tollgate-gw/tollgate/internal/payload"
	"github.com/tollgate-gw/tollgate/internal/provider"
	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/internal/telemetry"
	"github.com/tollgate-gw/tollgate/internal/tenant"
)

type serveFlags struct {
	config  string
	profile string
	listen  string
	demo    bool
	watch   time.Duration
	drain   time.Duration
	metrics string
}

func parseServe(args []string, stderr io.Writer) (serveFlags, error) {
	var f serveFlags
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.config, "config", os.Getenv("TOLLGATE_CONFIG"), "configuration `FILE` (env TOLLGATE_CONFIG)")
	fs.StringVar(&f.profile, "profile", os.Getenv("TOLLGATE_PROFILE"), "profile: dev, staging or production (env TOLLGATE_PROFILE; default: the file's default_profile)")
	fs.StringVar(&f.listen, "listen", os.Getenv("TOLLGATE_LISTEN"), "listen `ADDR` (env TOLLGATE_LISTEN; default: the file's server.listen, else 127.0.0.1:8080)")
	fs.DurationVar(&f.watch, "watch", 0, "also reload the config file when it changes, checking this often (e.g. 2s); SIGHUP always reloads")
	fs.StringVar(&f.metrics, "metrics-listen", os.Getenv("TOLLGATE_METRICS_LISTEN"), "serve /metrics on this `ADDR` instead of the API port (env TOLLGATE_METRICS_LISTEN)")
	fs.DurationVar(&f.drain, "drain-timeout", 30*time.Second, "on SIGTERM/SIGINT, how long requests and streams in flight may take to finish")
	fs.BoolVar(&f.demo, "demo", false, "run a built-in demo configuration: a mock provider, or a real one when OPENAI_API_KEY, ANTHROPIC_API_KEY or DEEPSEEK_API_KEY is set")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage:\n  tollgate serve --config FILE [--profile P] [--listen ADDR]\n  tollgate serve --demo\n\n"+
			"The admin and client key is TOLLGATE_MASTER_KEY (the demo makes one up when it is unset).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	if f.demo == (f.config != "") {
		return f, errors.New("serve: give exactly one of --config FILE and --demo")
	}
	return f, nil
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseServe(args, stderr)
	if err != nil {
		return err
	}
	tuneGC(os.Getenv)
	if path := os.Getenv("TOLLGATE_CPUPROFILE"); path != "" {
		stop, err := startCPUProfile(path)
		if err != nil {
			return err
		}
		defer stop()
	}
	cfg, demo, err := loadServeConfig(f, stderr)
	if err != nil {
		return err
	}
	key := os.Getenv("TOLLGATE_MASTER_KEY")
	if key == "" && f.demo {
		key = randomKey()
	}
	// Request lines are buffered and written every 100 ms, not one write
	// each; the deferred Close (which runs last) writes out the rest.
	logOut := telemetry.NewLogWriter(stderr, 100*time.Millisecond)
	defer logOut.Close(context.Background())
	log := slog.New(telemetry.NewJSONHandler(logOut, nil))
	// The store opens on its own goroutine: creating the file and migrating
	// it waits on several fsyncs, and meanwhile the parts that do not need
	// it are built and the port is bound. Nothing is served before the
	// store is open: the server starts below, after it.
	opening := openStoreAsync(ctx, cfg)
	defer opening.discard()
	addr := firstNonEmpty(f.listen, cfg.Server.Listen, "127.0.0.1:8080")
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	defer ln.Close() // on the failures before serving; a second Close is harmless
	tp, stopTracing, err := telemetry.SetupTracing(ctx, os.Getenv)
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	defer stopTracing(context.Background())
	prof, ok := cfg.Profile(firstNonEmpty(f.profile, cfg.DefaultProfile))
	if !ok {
		return fmt.Errorf("profile %q does not exist; use dev, staging or production", f.profile)
	}
	payloads, err := payload.New(cfg.PayloadLogging, log)
	if err != nil {
		return err
	}
	defer payloads.Close(context.Background())
	metrics := telemetry.NewMetrics()
	client, client2 := provider.NewHTTPClient(), provider.NewHTTP2Client()
	client.Transport = telemetry.PropagatingTransport(client.Transport)
	client2.Transport = telemetry.PropagatingTransport(client2.Transport)

	st, err := opening.wait()
	if err != nil {
		return err
	}
	defer st.Close()
	ledger, err := meter.NewWriter(st, meter.WriterOptions{Journal: cfg.Store.Journal, Logger: log})
	if err != nil {
		return err
	}
	// Runs once the gateway has closed: every request has settled by now,
	// so the queue and the journal are written out before the store closes.
	defer closeLedger(ledger, log)
	svc := tenant.NewService(st, time.Now)
	alerts := alert.New(alert.Options{Rules: prof.Alerts, Logger: log, Spend: st.TotalSpend})
	defer alerts.Close(context.Background())
	g, err := gateway.New(cfg, gateway.Options{Profile: f.profile, MasterKey: key, Logger: log, Tenants: svc,
		Ledger: ledger, Spend: st.Spend, Admin: admin.New(svc, st, st, time.Now), Client: client, HTTP2Client: client2,
		Metrics: metrics, Tracer: telemetry.NewTracer(tp), Alerts: alerts, ServeMetrics: f.metrics == "",
		Payloads: payloads})
	if err != nil {
		return err
	}
	defer g.Close(context.Background())
	base := "http://" + ln.Addr().String() + "/v1"
	fmt.Fprintf(stdout, "tollgate listening on %s (profile %s, default tier %s)\n", base, g.Profile().Name, g.Profile().DefaultTier)
	if f.demo {
		printDemo(stdout, base, key, demo)
	}
	var wg sync.WaitGroup
	rctx, stopReload := context.WithCancel(ctx)
	if !f.demo {
		wg.Go(func() { reloadLoop(rctx, g, alerts, f, log) })
	}
	wg.Go(func() { rotationLoop(rctx, svc, log) })
	wg.Go(func() { alerts.Run(rctx, 10*time.Second) })
	if f.metrics != "" {
		mln, err := net.Listen("tcp", f.metrics)
		if err != nil {
			stopReload()
			wg.Wait()
			return fmt.Errorf("metrics listener: %w", err)
		}
		msrv := &http.Server{Handler: metrics.Handler(), ReadHeaderTimeout: 10 * time.Second}
		wg.Go(func() { msrv.Serve(mln) })
		wg.Go(func() { <-rctx.Done(); msrv.Close() })
	}
	err = serveUntilDone(ctx, g, ln, f.drain)
	stopReload()
	wg.Wait()
	return err
}

// storeOpening is the store being opened on its own goroutine.
type storeOpening struct {
	done chan struct{}
	st   *store.SQLite
	err  error
}

// openStoreAsync starts opening the configured store.
func openStoreAsync(ctx context.Context, cfg *config.Config) *storeOpening {
	o := &storeOpening{done: make(chan struct{})}
	go func() {
		defer close(o.done)
		o.st, o.err = openStore(ctx, cfg)
	}()
	return o
}

// wait returns the store once it is open; the caller closes it.
func (o *storeOpening) wait() (*store.SQLite, error) {
	<-o.done
	st := o.st
	o.st = nil
	return st, o.err
}

// discard closes the store if wait never handed it over: a start that
// fails before it needs the store still leaves no connection behind.
func (o *storeOpening) discard() {
	<-o.done
	if o.st != nil {
		o.st.Close()
	}
}

// openStore opens the configured store, creating the SQLite file and
// applying migrations as needed.
func openStore(ctx context.Context, cfg *config.Config) (*store.SQLite, error) {
	st, err := store.OpenSQLite(ctx, cfg.Store.Path)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", cfg.Store.Path, err)
	}
	return st, nil
}

func closeLedger(w *meter.Writer, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		log.Error("usage ledger not fully written; the journal keeps the rest for the next start",
			slog.String("event", "ledger_flush_incomplete"), slog.String("error", err.Error()))
	}
}

// rotationLoop logs the keys near or past their team's maximum age, a moment
// after start (rotationFirstCheck) and every hour; GET
// /admin/keys/rotation-due answers the same.
func rotationLoop(ctx context.Context, svc *tenant.Service, log *slog.Logger) {
	t := time.NewTimer(rotationFirstCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		due, err := svc.RotationDue(ctx, "")
		if err != nil && ctx.Err() == nil {
			log.Error("rotation check failed", slog.String("error", err.Error()))
		}
		for _, n := range due {
			log.Warn("key rotation due", slog.String("event", "key_rotation_due"), slog.String("key_id", n.KeyID),
				slog.String("team_id", n.TeamID), slog.Time("due", n.Due), slog.Bool("overdue", n.Overdue))
		}
		t.Reset(time.Hour)
	}
}

// rotationFirstCheck delays the first rotation check past the start: it
// opens the store's first read connection and reads every team and key,
// work that, run at once, competed with the start for the CPU and delayed
// readiness by a few milliseconds on a loaded 2-core machine.
const rotationFirstCheck = time.Second

// reloadLoop reloads the file on SIGHUP, and on change with --watch. An
// invalid file is logged and the running configuration stays.
func reloadLoop(ctx context.Context, g *gateway.Gateway, alerts *alert.Engine, f serveFlags, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var tick <-chan time.Time
	if f.watch > 0 {
		t := time.NewTicker(f.watch)
		defer t.Stop()
		tick = t.C
	}
	last := fileStamp(f.config)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		case <-tick:
			if s := fileStamp(f.config); s == last {
				continue
			}
		}
		last = fileStamp(f.config)
		if reload(g, f.config, log) {
			alerts.SetRules(g.Profile().Alerts)
		}
	}
}

func reload(g *gateway.Gateway, path string, log *slog.Logger) bool {
	cfg, problems, err := config.Load(path, os.LookupEnv)
	if err == nil {
		err = g.Reload(cfg)
	}
	if err != nil {
		msgs := make([]string, 0, len(problems))
		for _, p := range problems {
			msgs = append(msgs, p.String())
		}
		log.Error("config reload rejected; the running configuration stays", slog.String("event", "config_reload_failed"),
			slog.String("file", path), slog.String("error", err.Error()), slog.Any("problems", msgs))
		return false
	}
	log.Info("config reloaded", slog.String("event", "config_reloaded"), slog.String("file", path),
		slog.Int("warnings", len(problems)))
	return true
}

// fileStamp changes when the file is rewritten.
func fileStamp(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	return fmt.Sprint(fi.ModTime().UnixNano(), fi.Size())
}

func loadServeConfig(f serveFlags, stderr io.Writer) (*config.Config, string, error) {
	if f.demo {
		yaml, what := demoConfig(os.LookupEnv)
		cfg, _, err := config.Parse("demo", []byte(yaml), os.LookupEnv)
		return cfg, what, err
	}
	cfg, problems, err := config.Load(f.config, os.LookupEnv)
	for _, p := range problems {
		fmt.Fprintln(stderr, p)
	}
	return cfg, "", err
}

// serveUntilDone serves until ctx ends, then drains: /readyz fails at once,
// new connections are refused, and requests and streams in flight get up to
// drain to finish.
func serveUntilDone(ctx context.Context, g *gateway.Gateway, ln net.Listener, drain time.Duration) error {
	srv := g.Server()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	g.Drain()
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := srv.ShutdownWithContext(sctx); err != nil {
		// The drain deadline passed: what is left is cut when the process
		// exits. Settle has run for every request that finished.
		g.Logger().Warn("drain deadline passed; closing remaining connections", slog.String("event", "drain_timeout"))
	}
	<-errc
	return nil
}

// GC defaults for a proxy, used unless GOGC or GOMEMLIMIT say otherwise. A
// gateway's live heap is small and almost everything it allocates dies with
// its request, so collecting at 400% growth instead of 100% spends about a
// fifth less CPU per request (bench/: 96.9 → 76.4 µs at c=32) for a few tens
// of MB; the soft limit makes the collector work harder before memory grows
// past 768 MiB, whatever GOGC allows.
const (
	gcPercent   = 400
	memoryLimit = 768 << 20
)

func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
}

// startCPUProfile profiles the whole run into path (TOLLGATE_CPUPROFILE, a
// diagnostic: go tool pprof reads it after the process exits).
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func randomKey() string {
	var b [16]byte
	rand.Read(b[:])
	return "tg-demo-" + hex.EncodeToString(b[:])
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

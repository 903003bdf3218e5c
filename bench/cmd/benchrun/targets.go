package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// target is one thing under test: a URL that speaks the OpenAI chat API, how
// to start and stop it, and which processes to sample.
type target struct {
	Name        string
	Description string

	baseURL    string // up to and including /v1
	soakURL    string // the route to the slow mock, up to /v1
	header     http.Header
	model      string // model for the fast mock
	soakModel  string // model for the slow mock
	metricsURL string // Prometheus endpoint with go_goroutines, or ""
	// streamFDs is how many descriptors the target's busiest process holds
	// per open stream: 1 where only the client's connection is its own
	// (direct: the mock; tollgate, whose slow provider speaks HTTP/2, so
	// the streams share a few upstream connections), 2 where each stream
	// also has an upstream connection (0 means 2). It caps the target's soak.
	streamFDs int

	start func(ctx context.Context) error
	stop  func()
	// pids returns the processes to sample; soak selects the processes that
	// serve the slow route (they differ only for "direct").
	pids func(soak bool) []int
	// gone says why the target's process is no longer there, or nil while
	// it runs. Every target stays up for the whole run, so one that dies
	// must be noticed: its later rows would otherwise hold error counts and
	// the CPU of no process.
	gone func() error

	info targetInfo
}

// exited says why t's process is gone, or nil while it runs (or when t
// cannot tell).
func (t *target) exited() error {
	if t.gone == nil {
		return nil
	}
	return t.gone()
}

// targetInfo is what the report says about a target.
type targetInfo struct {
	Name        string  `json:"name"`
	Description string  `json:"description"`
	Status      string  `json:"status"` // ok, unavailable, failed
	Why         string  `json:"why,omitempty"`
	ReadyMs     float64 `json:"ready_ms,omitempty"`
	IdleRSSMB   float64 `json:"idle_rss_mb,omitempty"` // ready + 1 s, before any request
	WarmRSSMB   float64 `json:"warm_rss_mb,omitempty"` // after the warm-up and 2 s idle
	Processes   int     `json:"processes,omitempty"`   // processes sampled
	Version     string  `json:"version,omitempty"`
	URL         string  `json:"url,omitempty"`
	Headers     string  `json:"headers,omitempty"` // names only
	Config      string  `json:"config,omitempty"`  // generated config, for the record
	ScenariosOK int     `json:"-"`
}

// lab holds what all targets share: the mocks, paths and the run's settings.
type lab struct {
	root      string // repository root
	tollgate  string // bin/tollgate
	work      string // temporary directory of this run
	p         params
	masterKey string
	fastPort  int
	slowPort  int
	fast      *child
	slow      *child
}

const (
	benchModel     = "mock-gpt"
	benchSoakModel = "mock-slow"
	mockKey        = "sk-bench" // sent upstream; the mock requires none
)

// startMocks starts the two mock upstreams: "fast" answers at once with a
// ~1.4 KB completion (a 20-chunk stream when asked for max_tokens 20);
// "slow" streams one token every 100 ms, for the soak.
func (l *lab) startMocks(ctx context.Context) error {
	for _, port := range []int{l.fastPort, l.slowPort} {
		if !portFree(port) {
			return fmt.Errorf("port %d is taken: set BENCH_MOCK_PORT / BENCH_MOCK_SLOW_PORT to free ports", port)
		}
	}
	var err error
	l.fast, err = startChild("mock-upstream (fast)", []string{l.tollgate, "mock-upstream",
		"--listen", fmt.Sprintf("127.0.0.1:%d", l.fastPort), "--reply-tokens", strconv.Itoa(replyTokens)},
		nil, l.work, filepath.Join(l.work, "mock-fast.log"))
	if err != nil {
		return err
	}
	l.slow, err = startChild("mock-upstream (slow)", []string{l.tollgate, "mock-upstream",
		"--listen", fmt.Sprintf("127.0.0.1:%d", l.slowPort), "--reply-tokens", strconv.Itoa(l.p.soakTokens()), "--tps", "10"},
		nil, l.work, filepath.Join(l.work, "mock-slow.log"))
	if err != nil {
		return err
	}
	for _, m := range []struct {
		c    *child
		port int
	}{{l.fast, l.fastPort}, {l.slow, l.slowPort}} {
		if _, err := waitHTTP(ctx, fmt.Sprintf("http://127.0.0.1:%d/v1/models", m.port), m.c, 10*time.Second); err != nil {
			return err
		}
	}
	return nil
}

func (l *lab) stopMocks() {
	l.fast.stop(5 * time.Second)
	l.slow.stop(5 * time.Second)
}

func (l *lab) fastURL() string { return fmt.Sprintf("http://127.0.0.1:%d/v1", l.fastPort) }
func (l *lab) slowURL() string { return fmt.Sprintf("http://127.0.0.1:%d/v1", l.slowPort) }

func bearer(key string) http.Header {
	h := http.Header{}
	h.Set("Authorization", "Bearer "+key)
	return h
}

// direct is the load generator straight to the mocks.
func (l *lab) direct() *target {
	return &target{
		Name:        "direct",
		Description: "load generator straight to the mock upstream (the floor)",
		baseURL:     l.fastURL(), soakURL: l.slowURL(),
		header: bearer(mockKey), model: benchModel, soakModel: benchSoakModel, streamFDs: 1,
		start: func(context.Context) error { return nil },
		stop:  func() {},
		pids: func(soak bool) []int {
			if soak {
				return []int{l.slow.pid()}
			}
			return []int{l.fast.pid()}
		},
		gone: func() error { return errors.Join(l.fast.gone(), l.slow.gone()) },
	}
}

// nginxConf is the generated configuration of the nginx target: a plain
// keep-alive reverse proxy, no buffering (SSE passes through as it comes), no
// access log.
func nginxConf(dir string, port, fast, slow int, workers string, nofile uint64) string {
	conns := max(1024, min(nofile-100, 65000))
	return fmt.Sprintf(`# Generated by bench/cmd/benchrun: nginx as a plain keep-alive reverse proxy.
worker_processes %[4]s;
worker_rlimit_nofile %[5]d;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events {
    worker_connections %[6]d;
}
http {
    access_log off;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    keepalive_timeout 75s;
    keepalive_requests 1000000;

    upstream mock_fast {
        server 127.0.0.1:%[2]d;
        keepalive 1024;
        keepalive_requests 1000000;
        keepalive_timeout 60s;
    }
    upstream mock_slow {
        server 127.0.0.1:%[3]d;
        keepalive 1024;
        keepalive_requests 1000000;
        keepalive_timeout 60s;
    }
    server {
        listen 127.0.0.1:%[7]d;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_buffering off;
        proxy_request_buffering off;
        proxy_read_timeout 300s;
        proxy_send_timeout 300s;
        location = /nginx-health { return 200 "ok\n"; }
        location /slow/ { proxy_pass http://mock_slow/; }
        location / { proxy_pass http://mock_fast; }
    }
}
`, dir, fast, slow, workers, nofile, conns, port)
}

// nginx is Debian's nginx in front of the mocks.
func (l *lab) nginx() *target {
	t := &target{
		Name:        "nginx",
		Description: "Debian nginx, plain keep-alive reverse proxy, proxy_buffering off, worker_processes " + l.p.NginxWorkers,
		header:      bearer(mockKey), model: benchModel, soakModel: benchSoakModel,
	}
	var c *child
	t.start = func(ctx context.Context) error {
		bin, err := exec.LookPath("nginx")
		if err != nil {
			return errUnavailable{"nginx is not installed (make bench installs it with apt-get; see the install step's output)"}
		}
		t.info.Version = commandVersion(bin, "-v")
		port, err := freePort()
		if err != nil {
			return err
		}
		dir := filepath.Join(l.work, "nginx")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		_ = os.Chmod(l.work, 0o755) // nginx workers run as nobody and may need to reach their temp dirs
		conf := nginxConf(dir, port, l.fastPort, l.slowPort, l.p.NginxWorkers, l.p.NoFile)
		t.info.Config = conf
		if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
			return err
		}
		c, err = startChild("nginx", []string{bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;"},
			nil, dir, filepath.Join(dir, "stderr.log"))
		if err != nil {
			return err
		}
		t.baseURL = fmt.Sprintf("http://127.0.0.1:%d/v1", port)
		t.soakURL = fmt.Sprintf("http://127.0.0.1:%d/slow/v1", port)
		d, err := waitHTTP(ctx, fmt.Sprintf("http://127.0.0.1:%d/nginx-health", port), c, 10*time.Second)
		if err != nil {
			return fmt.Errorf("%v; error.log: %s", err, tailFile(filepath.Join(dir, "error.log"), 400))
		}
		t.info.ReadyMs = ms(d)
		return nil
	}
	t.stop = func() { c.stop(10 * time.Second) }
	t.pids = func(bool) []int { return tree([]int{c.pid()}) }
	t.gone = func() error { return c.gone() }
	return t
}

// tollgateConfig is the configuration of both tollgate targets: one
// OpenAI-compatible provider per mock, priced models, and — for the full
// target — per-model rate limits. Teams, keys and budgets live in the store.
// The slow mock, which serves only the soak's long streams, is spoken to
// over HTTP/2 (protocol http2), as a deployment with many long streams
// would: they share a few upstream connections, so the gateway holds one
// descriptor per stream, not two, and reaches N=10,000 under a 20,000
// descriptor limit. The fast mock, every other scenario's, is HTTP/1.1.
func tollgateConfig(listen int, db string, fast, slow int, full bool) string {
	limits := ""
	if full {
		limits = "\n    limits: {rpm: 100000000, tpm: 2000000000}"
	}
	return fmt.Sprintf(`# Generated by bench/cmd/benchrun.
server:
  listen: 127.0.0.1:%[1]d
default_profile: dev
store:
  path: %[2]s
providers:
  fast:
    kind: openai
    base_url: http://127.0.0.1:%[3]d/v1
    api_key: %[5]s
  slow:
    kind: openai
    base_url: http://127.0.0.1:%[4]d/v1
    api_key: %[5]s
    protocol: http2
models:
  %[6]s:
    provider: fast
    context_window: 128000
    max_output_tokens: 16384
    price: {input: 0.15, output: 0.60}%[8]s
  %[7]s:
    provider: slow
    context_window: 128000
    max_output_tokens: 16384
    price: {input: 0.15, output: 0.60}%[8]s
tiers:
  budget: [%[6]s]
  standard: [%[6]s]
  premium: [%[6]s]
profiles:
  dev:
    request_timeout: 300s
`, listen, db, fast, slow, mockKey, benchModel, benchSoakModel, limits)
}

// tollgate is one of the two tollgate targets. minimal: master key, no team,
// logs to /dev/null. full: a team's virtual key with rate limits and a budget
// (both far above what the run uses, so the reservation path runs on every
// request without refusing any), ledger on SQLite, metrics, one JSON log line
// per request to a file.
func (l *lab) tollgateTarget(full bool) *target {
	name, desc := "tollgate-minimal", "pass-through: master key, no team or key, logs to /dev/null (the SQLite store is always opened: empty, in a temp dir)"
	if full {
		name, desc = "tollgate-full", "virtual key of a team with rpm/tpm limits and a budget (reservation on every request), per-model limits, ledger on SQLite, /metrics, JSON log line per request to a file"
	}
	t := &target{Name: name, Description: desc, model: benchModel, soakModel: benchSoakModel, streamFDs: 1}
	var c *child
	t.start = func(ctx context.Context) error {
		dir := filepath.Join(l.work, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		port, err := freePort()
		if err != nil {
			return err
		}
		db := filepath.Join(dir, "tollgate.db")
		conf := tollgateConfig(port, db, l.fastPort, l.slowPort, full)
		t.info.Config = conf
		cfgPath := filepath.Join(dir, "tollgate.yaml")
		if err := os.WriteFile(cfgPath, []byte(conf), 0o644); err != nil {
			return err
		}
		t.header = bearer(l.masterKey)
		logPath := "" // minimal: stderr (the JSON log) to /dev/null
		if full {
			secret, err := createKey(ctx, l.tollgate, db)
			if err != nil {
				return err
			}
			t.header = bearer(secret)
			logPath = filepath.Join(dir, "tollgate.log.json")
		}
		c, err = startChild(name, []string{l.tollgate, "serve", "--config", cfgPath}, []string{"TOLLGATE_MASTER_KEY=" + l.masterKey}, dir, logPath)
		if err != nil {
			return err
		}
		t.baseURL = fmt.Sprintf("http://127.0.0.1:%d/v1", port)
		t.soakURL = t.baseURL
		t.metricsURL = fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
		d, err := waitHTTP(ctx, fmt.Sprintf("http://127.0.0.1:%d/readyz", port), c, 20*time.Second)
		if err != nil {
			return err
		}
		t.info.ReadyMs = ms(d)
		return nil
	}
	t.stop = func() { c.stop(15 * time.Second) }
	t.pids = func(bool) []int { return tree([]int{c.pid()}) }
	t.gone = func() error { return c.gone() }
	return t
}

// createKey creates the benchmark team and its key in the store file and
// returns the key's secret.
func createKey(ctx context.Context, bin, db string) (string, error) {
	limits := []string{"--rpm", "100000000", "--tpm", "2000000000", "--budget-usd", "1000000", "--period", "monthly"}
	team := exec.CommandContext(ctx, bin, append([]string{"teams", "create", "bench", "--store", db, "--json"}, limits...)...)
	if out, err := team.CombinedOutput(); err != nil {
		return "", fmt.Errorf("tollgate teams create: %v: %s", err, out)
	}
	key := exec.CommandContext(ctx, bin, append([]string{"keys", "create", "--team", "bench", "--name", "load", "--store", db, "--json"}, limits...)...)
	out, err := key.Output()
	if err != nil {
		return "", fmt.Errorf("tollgate keys create: %v: %s", err, out)
	}
	var k struct {
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal(out, &k); err != nil || k.Secret == "" {
		return "", fmt.Errorf("tollgate keys create: no secret in %q (%v)", out, err)
	}
	return k.Secret, nil
}

// portkeyScript is where install.sh puts the Portkey gateway.
func (l *lab) portkeyScript() string {
	return filepath.Join(l.root, "bench", ".peers", "portkey", "node_modules", "@portkey-ai", "gateway", "build", "start-server.js")
}

// portkey is the @portkey-ai/gateway npm package, routed to the mocks with
// the x-portkey-provider and x-portkey-custom-host headers.
func (l *lab) portkey() *target {
	t := &target{
		Name:        "portkey",
		Description: "@portkey-ai/gateway on Node (headless, NODE_ENV=production), provider openai with x-portkey-custom-host",
		model:       benchModel, soakModel: benchSoakModel,
	}
	var c *child
	t.start = func(ctx context.Context) error {
		script := l.portkeyScript()
		if _, err := os.Stat(script); err != nil {
			return errUnavailable{"Portkey is not installed in bench/.peers/portkey (the install step failed or was skipped; see its output)"}
		}
		node, err := exec.LookPath("node")
		if err != nil {
			return errUnavailable{"node is not installed"}
		}
		t.info.Version = "@portkey-ai/gateway " + packageVersion(filepath.Join(filepath.Dir(filepath.Dir(script)), "package.json")) + " on node " + commandVersion(node, "--version")
		port, err := freePort()
		if err != nil {
			return err
		}
		dir := filepath.Join(l.work, "portkey")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		c, err = startChild("portkey", []string{node, script, fmt.Sprintf("--port=%d", port), "--headless"},
			[]string{"NODE_ENV=production"}, dir, filepath.Join(dir, "portkey.log"))
		if err != nil {
			return err
		}
		h := bearer(mockKey)
		h.Set("x-portkey-provider", "openai")
		h.Set("x-portkey-custom-host", l.fastURL())
		t.header = h
		t.baseURL = fmt.Sprintf("http://127.0.0.1:%d/v1", port)
		t.soakURL = t.baseURL
		d, err := waitHTTP(ctx, fmt.Sprintf("http://127.0.0.1:%d/", port), c, 30*time.Second)
		if err != nil {
			return err
		}
		t.info.ReadyMs = ms(d)
		return nil
	}
	t.stop = func() { c.stop(10 * time.Second) }
	t.pids = func(bool) []int { return tree([]int{c.pid()}) }
	t.gone = func() error { return c.gone() }
	return t
}

// soakHeader is the header of the soak's requests: Portkey is pointed at the
// slow mock through its custom-host header; the others route by URL or model.
func (t *target) soakHeader(l *lab) http.Header {
	h := t.header.Clone()
	if h.Get("x-portkey-custom-host") != "" {
		h.Set("x-portkey-custom-host", l.slowURL())
	}
	return h
}

// extraSpec is one target from BENCH_EXTRA_TARGETS.
type extraSpec struct {
	name   string
	url    string
	header http.Header
}

// parseExtra parses BENCH_EXTRA_TARGETS: targets separated by ';' or
// newlines, each "name=URL[|Header:value,Header:value…]". URL is the base
// (…/v1) or the full …/v1/chat/completions.
func parseExtra(s string) ([]extraSpec, error) {
	var out []extraSpec
	for _, item := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == '\n' }) {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, rest, ok := strings.Cut(item, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("BENCH_EXTRA_TARGETS: %q is not name=URL[|Header:value,…]", item)
		}
		raw, hdrs, _ := strings.Cut(rest, "|")
		raw = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSpace(raw), "/"), "/chat/completions")
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("BENCH_EXTRA_TARGETS: %s: bad URL %q", name, raw)
		}
		h := http.Header{}
		for _, kv := range strings.Split(hdrs, ",") {
			if strings.TrimSpace(kv) == "" {
				continue
			}
			k, v, ok := strings.Cut(kv, ":")
			if !ok || strings.TrimSpace(k) == "" {
				return nil, fmt.Errorf("BENCH_EXTRA_TARGETS: %s: header %q is not Name:value", name, kv)
			}
			h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		}
		out = append(out, extraSpec{name: name, url: raw, header: h})
	}
	return out, nil
}

// extra is a target from BENCH_EXTRA_TARGETS: already running, not started
// by the harness; its processes are found by the port it listens on.
func (l *lab) extra(s extraSpec) *target {
	t := &target{
		Name:        s.name,
		Description: "extra target from BENCH_EXTRA_TARGETS (started outside the harness)",
		baseURL:     s.url, soakURL: s.url, header: s.header,
		model: benchModel, soakModel: benchSoakModel,
	}
	u, _ := url.Parse(s.url)
	port, _ := strconv.Atoi(u.Port())
	if port == 0 {
		port = map[string]int{"http": 80, "https": 443}[u.Scheme]
	}
	// Whether it is gone can be told only if a local process listened on
	// the port at the start (the URL may name another machine).
	local := false
	t.start = func(context.Context) error {
		local = len(listeners(port)) > 0
		return nil
	}
	t.stop = func() {}
	t.pids = func(bool) []int { return tree(listeners(port)) }
	t.gone = func() error {
		if local && len(listeners(port)) == 0 {
			return fmt.Errorf("nothing listens on port %d any more", port)
		}
		return nil
	}
	return t
}

// errUnavailable marks a target that cannot run here (not installed), as
// opposed to one that failed.
type errUnavailable struct{ why string }

func (e errUnavailable) Error() string { return e.why }

func isUnavailable(err error) bool {
	var u errUnavailable
	return errors.As(err, &u)
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// commandVersion runs bin with args and returns the first line it prints.
func commandVersion(bin string, args ...string) string {
	out, _ := exec.Command(bin, args...).CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(line)
}

func packageVersion(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "?"
	}
	var p struct {
		Version string `json:"version"`
	}
	_ = json.Unmarshal(b, &p)
	return p.Version
}

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate-gw/tollgate/internal/mockupstream"
)

// TestMain lets a test run this package's main as a real process: the test
// binary re-executes itself with TOLLGATE_TEST_MAIN=1.
func TestMain(m *testing.M) {
	if os.Getenv("TOLLGATE_TEST_MAIN") == "1" {
		os.Args = append([]string{"tollgate"}, strings.Fields(os.Getenv("TOLLGATE_TEST_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const lifecycleConfig = `
providers:
  up: {kind: openai, base_url: MOCK/v1, api_key: k}
models:
  one: {provider: up, upstream: one-up, price: {input: 1, output: 2}}
  two: {provider: up, upstream: two-up, price: {input: 1, output: 2}}
tiers: {budget: [TIER], standard: [one], premium: [one]}
`

func writeConfig(t *testing.T, path, mockURL, tier string) {
	t.Helper()
	y := strings.ReplaceAll(strings.ReplaceAll(lifecycleConfig, "MOCK", mockURL), "TIER", tier)
	if err := os.WriteFile(path, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
}

// gatewayProcess runs `tollgate serve` as a child process and returns its
// base URL.
func gatewayProcess(t *testing.T, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "TOLLGATE_TEST_MAIN=1", "TOLLGATE_MASTER_KEY=tg-life",
		"TOLLGATE_TEST_ARGS="+strings.Join(append([]string{"serve", "--listen", "127.0.0.1:0"}, args...), " "))
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if i := strings.Index(sc.Text(), "http://"); i >= 0 {
			go io.Copy(io.Discard, out)
			return cmd, strings.Fields(sc.Text()[i:])[0]
		}
	}
	t.Fatal("the gateway printed no address")
	return nil, ""
}

func servedBy(t *testing.T, base string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/chat/completions",
		strings.NewReader(`{"model":"auto","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer tg-life")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	return resp.Header.Get("X-Tollgate-Model")
}

// SIGHUP reloads; an invalid file is rejected and the old config keeps serving.
func TestSIGHUPReload(t *testing.T) {
	mock := mockupstream.New(mockupstream.Options{})
	url, stop, err := mock.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stop(context.Background())
	path := filepath.Join(t.TempDir(), "tollgate.yaml")
	writeConfig(t, path, url, "one")
	cmd, base := gatewayProcess(t, "--config", path)
	if m := servedBy(t, base); m != "one" {
		t.Fatalf("served by %q, want one", m)
	}
	writeConfig(t, path, url, "two")
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, func() bool { return servedBy(t, base) == "two" })
	os.WriteFile(path, []byte("tiers: {budget: [nope]}\nbogus: 1\n"), 0o644)
	cmd.Process.Signal(syscall.SIGHUP)
	time.Sleep(300 * time.Millisecond)
	if m := servedBy(t, base); m != "two" {
		t.Errorf("after an invalid reload served by %q, want the old config's two", m)
	}
}

// SIGTERM: a stream in flight completes, then the process exits 0.
func TestGracefulShutdown(t *testing.T) {
	mock := mockupstream.New(mockupstream.Options{TokensPerSecond: 20}) // 12 tokens ≈ 600 ms
	url, stop, err := mock.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stop(context.Background())
	path := filepath.Join(t.TempDir(), "tollgate.yaml")
	writeConfig(t, path, url, "one")
	cmd, base := gatewayProcess(t, "--config", path)
	req, _ := http.NewRequest(http.MethodPost, base+"/chat/completions",
		strings.NewReader(`{"model":"auto","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer tg-life")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	rest, err := io.ReadAll(br)
	if err != nil || !strings.HasSuffix(string(rest), "data: [DONE]\n\n") {
		t.Errorf("stream in flight at SIGTERM: err %v, ends %q", err, tail(string(rest)))
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit: %v, want 0", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the process did not exit after SIGTERM")
	}
}

// explain prints the chain with each deployment and the settings that apply.
func TestExplainCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tollgate.yaml")
	writeConfig(t, path, "http://127.0.0.1:1", "two")
	body := filepath.Join(t.TempDir(), "req.json")
	os.WriteFile(body, []byte(`{"model":"auto","max_tokens":10,"messages":[{"role":"user","content":"hello there"}]}`), 0o644)
	var out strings.Builder
	if err := Main(context.Background(), []string{"explain", "--config", path, "--model", "auto", "--request", body}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`tier budget`, "two", "deployment two", "breaker closed", "prompt tokens", "max cost", "retries: up to"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("explain output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := Main(context.Background(), []string{"explain", "--config", path, "--model", "auto", "--criticality", "critical", "--json"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var ex struct {
		Tier       string `json:"tier"`
		Candidates []struct {
			Model string `json:"model"`
		} `json:"candidates"`
	}
	if err := json.Unmarshal([]byte(out.String()), &ex); err != nil || ex.Tier != "premium" || ex.Candidates[0].Model != "one" {
		t.Errorf("explain --json: %v %+v", err, ex)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 50 {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("condition not met within 2.5 s")
}

func tail(s string) string {
	if len(s) > 80 {
		return s[len(s)-80:]
	}
	return s
}

// The whole tenancy path through a running gateway process: the CLI creates
// a team and a key over the admin API, the key serves a request, usage
// reports it, and another team's key cannot see it.
func TestTenancyThroughRunningGateway(t *testing.T) {
	mock := mockupstream.New(mockupstream.Options{})
	url, stop, err := mock.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stop(context.Background())
	path := filepath.Join(t.TempDir(), "tollgate.yaml")
	writeConfig(t, path, url, "one")
	_, base := gatewayProcess(t, "--config", path)
	root := strings.TrimSuffix(base, "/v1")
	t.Setenv("TOLLGATE_MASTER_KEY", "tg-life")
	cli := func(args ...string) string {
		t.Helper()
		var out, errOut strings.Builder
		if err := Main(context.Background(), append(args, "--url", root), &out, &errOut); err != nil {
			t.Fatalf("tollgate %v: %v\n%s", args, err, errOut.String())
		}
		return out.String()
	}
	cli("teams", "create", "alpha", "--budget-usd", "5", "--period", "monthly")
	cli("teams", "create", "beta")
	secretOf := func(out string) string {
		for _, f := range strings.Fields(out) {
			if strings.HasPrefix(f, "tg-") && len(f) == 46 {
				return f
			}
		}
		t.Fatalf("no secret in %q", out)
		return ""
	}
	alpha := secretOf(cli("keys", "create", "--team", "alpha", "--name", "svc"))
	beta := secretOf(cli("keys", "create", "--team", "beta", "--name", "svc"))
	req, _ := http.NewRequest(http.MethodPost, base+"/chat/completions",
		strings.NewReader(`{"model":"auto","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+alpha)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("chat with alpha's key: %v %v", resp.Status, err)
	}
	resp.Body.Close()
	var usage struct {
		Totals struct {
			Requests int64 `json:"requests"`
		} `json:"totals"`
	}
	waitFor(t, func() bool {
		json.Unmarshal([]byte(cli("usage", "--team", "alpha", "--format", "json")), &usage)
		return usage.Totals.Requests == 1
	})
	// beta's key reads only beta.
	req, _ = http.NewRequest(http.MethodGet, root+"/admin/usage?team=alpha", nil)
	req.Header.Set("Authorization", "Bearer "+beta)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("beta reading alpha's usage: %d, want 404", resp.StatusCode)
	}
}

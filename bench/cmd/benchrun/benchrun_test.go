package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func TestParseStat(t *testing.T) {
	// A command name with spaces and parentheses; fields after it as in proc(5).
	line := "4242 (we (ird) name) S 1 4242 4242 0 -1 4194560 500 0 0 0 123 45 0 0 20 0 7 0 100 123456789 2500 18446744073709551615"
	st, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.ppid != 1 || st.cpuTicks != 168 || st.numThreads != 7 || st.rssPages != 2500 {
		t.Errorf("parseStat = %+v, want ppid 1, 168 ticks, 7 threads, 2500 pages", st)
	}
	if _, err := parseStat([]byte("garbage")); err == nil {
		t.Error("parseStat accepted garbage")
	}
	self, err := readStat(os.Getpid())
	if err != nil || self.rssPages <= 0 || self.numThreads <= 0 {
		t.Errorf("readStat(self) = %+v, %v", self, err)
	}
}

func TestParseExtra(t *testing.T) {
	got, err := parseExtra("litellm=http://127.0.0.1:4000/v1|Authorization:Bearer sk-1,X-Team: a ; bifrost = http://127.0.0.1:8080/v1/chat/completions")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].name != "litellm" || got[0].url != "http://127.0.0.1:4000/v1" ||
		got[0].header.Get("Authorization") != "Bearer sk-1" || got[0].header.Get("X-Team") != "a" {
		t.Errorf("first = %+v", got[0])
	}
	if got[1].name != "bifrost" || got[1].url != "http://127.0.0.1:8080/v1" || len(got[1].header) != 0 {
		t.Errorf("second = %+v", got[1])
	}
	for _, bad := range []string{"nourl", "x=ftp://h/v1", "x=http://h/v1|NoColon"} {
		if _, err := parseExtra(bad); err == nil {
			t.Errorf("parseExtra(%q) succeeded", bad)
		}
	}
	if got, err := parseExtra(""); err != nil || len(got) != 0 {
		t.Errorf("empty: %v, %v", got, err)
	}
}

func TestPercentiles(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	p := percentiles(ds)
	if p.P50 != 50 || p.P90 != 90 || p.P99 != 99 || p.Max != 100 || p.Mean != 50.5 {
		t.Errorf("percentiles = %+v", p)
	}
	if (percentiles(nil) != pcts{}) {
		t.Error("empty input must give zeros")
	}
}

func TestParseWrk(t *testing.T) {
	out := []byte("Running 1s test @ http://x\nBENCH_JSON {\"requests\":10,\"duration_us\":1000000,\"bytes\":5,\"errors\":{\"connect\":0,\"read\":1,\"write\":0,\"status\":2,\"timeout\":0},\"latency_us\":{\"min\":1,\"mean\":2.5,\"max\":9,\"p50\":2,\"p90\":5,\"p99\":8,\"p999\":9}}\n")
	w, err := parseWrk(out)
	if err != nil || w.Requests != 10 || w.errorCount() != 3 || w.LatencyUS.P99 != 8 {
		t.Errorf("parseWrk = %+v, %v", w, err)
	}
	if _, err := parseWrk([]byte("no json")); err == nil {
		t.Error("parseWrk without the line succeeded")
	}
}

// The probe counts SSE events across read boundaries, finds [DONE] and
// publishes into the response header at EOF.
func TestProbeBody(t *testing.T) {
	pt := newProbeTransport(1)
	pt.inflight.Store(1)
	body := "data: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n"
	hdr := make(map[string][]string)
	pb := &probeBody{rc: io.NopCloser(&slowReader{s: body, n: 3}), start: time.Now(), hdr: hdr, t: pt}
	if _, err := io.Copy(io.Discard, pb); err != nil {
		t.Fatal(err)
	}
	pb.Close()
	s := toSample(&vegeta.Result{Code: 200, Headers: hdr})
	if s.events != 3 || !s.done || s.ttfb <= 0 {
		t.Errorf("sample = %+v, want 3 events, done, a TTFB", s)
	}
	if pt.inflight.Load() != 0 {
		t.Errorf("in flight = %d after Close", pt.inflight.Load())
	}
	tl := count([]sample{s, {code: 200, done: false, events: 3}, {code: 500}}, true, 2)
	if tl.ok != 1 || tl.errors != 2 {
		t.Errorf("count: %d ok %d errors, want 1 and 2", tl.ok, tl.errors)
	}
}

type slowReader struct {
	s string
	n int
}

func (r *slowReader) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	k := min(r.n, len(r.s), len(p))
	copy(p, r.s[:k])
	r.s = r.s[k:]
	return k, nil
}

func TestCountPacerStops(t *testing.T) {
	p := countPacer{ConstantPacer: vegeta.ConstantPacer{Freq: 10, Per: time.Second}, n: 5}
	if _, stop := p.Pace(0, 4); stop {
		t.Error("stopped before n")
	}
	if _, stop := p.Pace(0, 5); !stop {
		t.Error("did not stop at n")
	}
}

// The generated configurations are accepted by the programs that read them,
// when those are at hand.
func TestGeneratedConfigs(t *testing.T) {
	dir := t.TempDir()
	if bin, err := filepath.Abs("../../../bin/tollgate"); err == nil {
		if _, err := os.Stat(bin); err == nil {
			for _, full := range []bool{false, true} {
				cfg := filepath.Join(dir, "t.yaml")
				os.WriteFile(cfg, []byte(tollgateConfig(18999, filepath.Join(dir, "t.db"), 18090, 18091, full)), 0o644)
				if out, err := exec.Command(bin, "config", "validate", cfg).CombinedOutput(); err != nil {
					t.Errorf("tollgate config validate (full=%v): %v: %s", full, err, out)
				}
			}
		}
	}
	if nginx, err := exec.LookPath("nginx"); err == nil && os.Geteuid() == 0 {
		conf := filepath.Join(dir, "nginx.conf")
		os.WriteFile(conf, []byte(nginxConf(dir, 18998, 18090, 18091, "auto", 20000)), 0o644)
		if out, err := exec.Command(nginx, "-t", "-p", dir, "-c", conf, "-e", filepath.Join(dir, "e.log")).CombinedOutput(); err != nil {
			t.Errorf("nginx -t: %v: %s", err, out)
		}
	}
	if !strings.Contains(string(chatBody("m", 20, true)), `"include_usage":true`) {
		t.Error("stream body must ask for the usage chunk")
	}
}

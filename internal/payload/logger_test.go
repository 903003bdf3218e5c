package payload

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tollgate-gw/tollgate/internal/config"
)

// testConfig is an enabled section writing to a file in a temporary directory.
func testConfig(t testing.TB) config.PayloadLogging {
	return config.PayloadLogging{
		Teams:        []string{"search", "team_1a2b"},
		Path:         filepath.Join(t.TempDir(), "payloads.jsonl"),
		MaxBytes:     config.DefaultPayloadMaxBytes,
		MaxFileBytes: config.DefaultPayloadMaxFileBytes,
	}
}

var quiet = slog.New(slog.DiscardHandler)

// start makes a Logger and closes it at the end of the test.
func start(t testing.TB, cfg config.PayloadLogging, o options) *Logger {
	t.Helper()
	l, err := newLogger(cfg, quiet, o)
	if err != nil {
		t.Fatalf("newLogger: %v", err)
	}
	if l == nil {
		t.Fatal("newLogger = nil for an enabled config")
	}
	t.Cleanup(func() { l.Close(context.Background()) })
	return l
}

// closeLogger closes l and checks that its goroutine is gone.
func closeLogger(t *testing.T, l *Logger) {
	t.Helper()
	if err := l.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-l.done:
	default:
		t.Fatal("Close returned with the writer goroutine still running")
	}
}

// readLines decodes the JSON lines of the file at path.
func readLines(t *testing.T, path string) []line {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []line
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%s: line %d is not JSON: %v\n%s", path, len(out)+1, err, sc.Bytes())
		}
		out = append(out, l)
	}
	return out
}

func entry(id string) Entry {
	return Entry{
		Time: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC), RequestID: id, TeamID: "team_1a2b", KeyID: "key_1",
		Model: "gpt-4o-mini", Status: 200,
		Request:  []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`),
		Response: []byte(`{"choices":[{"message":{"role":"assistant","content":"hello"}}]}`),
	}
}

// TestEnabled checks that only the listed teams are logged, by id or name.
func TestEnabled(t *testing.T) {
	l := start(t, testConfig(t), options{})
	tests := []struct {
		id, name string
		want     bool
	}{
		{"team_1a2b", "anything", true},
		{"team_9999", "search", true},
		{"team_1a2b", "", true},
		{"", "search", true},
		{"team_9999", "billing", false},
		{"search2", "Search", false},
		{"", "", false},
	}
	for _, tt := range tests {
		if got := l.Enabled(tt.id, tt.name); got != tt.want {
			t.Errorf("Enabled(%q, %q) = %v, want %v", tt.id, tt.name, got, tt.want)
		}
	}
}

// TestDisabled checks that New returns nil when no team is listed, that a
// nil Logger's methods do nothing, and that no file appears.
func TestDisabled(t *testing.T) {
	cfg := testConfig(t)
	cfg.Teams = nil
	l, err := New(cfg, quiet)
	if l != nil || err != nil {
		t.Fatalf("New(no teams) = %v, %v; want nil, nil", l, err)
	}
	if l.Enabled("team_1a2b", "search") {
		t.Error("nil Logger: Enabled = true")
	}
	l.Record(entry("r1"))
	if s := l.Stats(); s != (Stats{}) {
		t.Errorf("nil Logger: Stats = %+v", s)
	}
	if err := l.Close(context.Background()); err != nil {
		t.Errorf("nil Logger: Close = %v", err)
	}
	if _, err := os.Stat(cfg.Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("disabled: %s exists (err %v)", cfg.Path, err)
	}
}

// TestNewErrors checks what New refuses.
func TestNewErrors(t *testing.T) {
	noPath := testConfig(t)
	noPath.Path = ""
	noDir := testConfig(t)
	noDir.Path = filepath.Join(t.TempDir(), "missing", "p.jsonl")
	zero := testConfig(t)
	zero.MaxBytes = 0
	for name, cfg := range map[string]config.PayloadLogging{"no path": noPath, "no directory": noDir, "zero max_bytes": zero} {
		if l, err := New(cfg, quiet); err == nil || l != nil {
			t.Errorf("New(%s) = %v, %v; want an error", name, l, err)
		}
	}
}

// TestRecordWrites checks the lines written: fields, redaction (built-in
// and configured) and the size cap, and the counters.
func TestRecordWrites(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxBytes = 40
	cfg.Redact = []*regexp.Regexp{regexp.MustCompile(`ssn-\d{3}-\d{2}-\d{4}`)}
	l := start(t, cfg, options{now: func() time.Time { return time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC) }})

	first := entry("r1")
	first.Request = []byte(`{"c":"bob@example.com ssn-123-45-6789"}`)
	first.Response = []byte(`{"c":"ok"}`)
	second := entry("r2")
	second.Time = time.Time{} // filled in by Record
	second.Stream, second.Status = true, 502
	second.Request = []byte(`{"c":"` + strings.Repeat("é", 30) + `"}`)
	second.Response = nil
	l.Record(first)
	l.Record(second)
	closeLogger(t, l)

	got := readLines(t, cfg.Path)
	want := []line{
		{Time: first.Time, RequestID: "r1", TeamID: "team_1a2b", KeyID: "key_1", Model: "gpt-4o-mini", Status: 200,
			Request: `{"c":"[REDACTED] [REDACTED]"}`, Response: `{"c":"ok"}`},
		{Time: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), RequestID: "r2", TeamID: "team_1a2b", KeyID: "key_1",
			Model: "gpt-4o-mini", Status: 502, Stream: true,
			Request: `{"c":"` + strings.Repeat("é", 17), Truncated: true},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("lines (-got +want):\n%s", diff)
	}
	if s, want := l.Stats(), (Stats{Written: 2, Truncated: 1}); s != want {
		t.Errorf("Stats = %+v, want %+v", s, want)
	}
	if fi, err := os.Stat(cfg.Path); err == nil && fi.Mode().Perm() != filePerm {
		t.Errorf("file mode %v, want %v", fi.Mode().Perm(), os.FileMode(filePerm))
	}
}

// TestRotation checks that the file is renamed to path.1 before a line
// would take it past max_file_bytes, that one old file is kept, and that a
// restart counts what the file already holds.
func TestRotation(t *testing.T) {
	cfg := testConfig(t)
	lineLen := len(mustEncode(t, entry("r00")))
	cfg.MaxFileBytes = int64(3*lineLen + lineLen/2) // three lines per file

	l := start(t, cfg, options{})
	for i := range 8 {
		l.Record(entry(fmt.Sprintf("r%02d", i)))
	}
	closeLogger(t, l)
	ids := func(path string) []string {
		var out []string
		for _, ln := range readLines(t, path) {
			out = append(out, ln.RequestID)
		}
		return out
	}
	// r00-r02 went to the first file, r03-r05 to the second, which pushed
	// the first out; r06-r07 are in the current one.
	if diff := cmp.Diff(ids(cfg.Path+".1"), []string{"r03", "r04", "r05"}); diff != "" {
		t.Errorf("%s.1 (-got +want):\n%s", cfg.Path, diff)
	}
	if diff := cmp.Diff(ids(cfg.Path), []string{"r06", "r07"}); diff != "" {
		t.Errorf("%s (-got +want):\n%s", cfg.Path, diff)
	}
	if _, err := os.Stat(cfg.Path + ".2"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s.2 exists: only one old file is kept", cfg.Path)
	}

	// A new Logger appends to the file and rotates when it is full.
	l = start(t, cfg, options{})
	for _, id := range []string{"r08", "r09"} {
		l.Record(entry(id))
	}
	closeLogger(t, l)
	if diff := cmp.Diff(ids(cfg.Path+".1"), []string{"r06", "r07", "r08"}); diff != "" {
		t.Errorf("after restart, %s.1 (-got +want):\n%s", cfg.Path, diff)
	}
	if diff := cmp.Diff(ids(cfg.Path), []string{"r09"}); diff != "" {
		t.Errorf("after restart, %s (-got +want):\n%s", cfg.Path, diff)
	}
}

func mustEncode(t *testing.T, e Entry) []byte {
	t.Helper()
	b, _, err := newEncoder(newRedactor(nil), config.DefaultPayloadMaxBytes).encode(&e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCloseDrains checks that Close writes everything queued before it
// returns, including what queued up behind a slow write.
func TestCloseDrains(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		cfg := testConfig(t)
		l := start(t, cfg, options{hook: func(e *Entry) {
			if e.RequestID == "r00" {
				<-release
			}
		}})
		for i := range 50 {
			l.Record(entry(fmt.Sprintf("r%02d", i)))
		}
		closed := make(chan error)
		go func() { closed <- l.Close(context.Background()) }()
		synctest.Wait()
		close(release)
		if err := <-closed; err != nil {
			t.Fatalf("Close: %v", err)
		}
		if s, want := l.Stats(), (Stats{Written: 50}); s != want {
			t.Errorf("Stats = %+v, want %+v", s, want)
		}
		if n := len(readLines(t, cfg.Path)); n != 50 {
			t.Errorf("file holds %d lines, want 50", n)
		}
		l.Record(entry("late"))
		if s := l.Stats(); s.Dropped != 1 {
			t.Errorf("Record after Close: Dropped = %d, want 1", s.Dropped)
		}
	})
}

// TestQueueFullDrops checks that Record never waits for a blocked writer:
// past the queue it drops and counts. In a synctest bubble a Record that
// blocked would be reported as a deadlock.
func TestQueueFullDrops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		l := start(t, testConfig(t), options{queue: 4, hook: func(*Entry) { <-release }})
		l.Record(entry("first"))
		synctest.Wait() // the writer holds "first" and is blocked
		for i := range 999 {
			l.Record(entry(fmt.Sprint(i)))
		}
		if s, want := l.Stats(), (Stats{Dropped: 995}); s != want {
			t.Errorf("with the writer blocked: Stats = %+v, want %+v", s, want)
		}
		close(release)
		if err := l.Close(context.Background()); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if s, want := l.Stats(), (Stats{Written: 5, Dropped: 995}); s != want {
			t.Errorf("after Close: Stats = %+v, want %+v", s, want)
		}
	})
}

// TestQueueBytesBound checks the bound on body bytes held by the queue, and
// that an entry bigger than the bound still goes into an empty queue.
func TestQueueBytesBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		l := start(t, testConfig(t), options{queueBytes: 1000, hook: func(*Entry) { <-release }})
		big := entry("big")
		big.Request = bytes.Repeat([]byte("a"), 1500)
		l.Record(big) // alone: taken
		synctest.Wait()
		small := entry("small")
		small.Request, small.Response = bytes.Repeat([]byte("b"), 100), nil
		l.Record(small) // 1600 bytes held: dropped
		close(release)
		synctest.Wait() // the queue is empty again
		l.Record(small)
		l.Record(small)
		if err := l.Close(context.Background()); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if s, want := l.Stats(), (Stats{Written: 3, Dropped: 1}); s != want {
			t.Errorf("Stats = %+v, want %+v", s, want)
		}
		if q := l.queued.Load(); q != 0 {
			t.Errorf("queued bytes after Close = %d, want 0", q)
		}
	})
}

// TestCloseDeadline checks that when Close's ctx ends first, what is still
// queued is dropped and counted, the entry being written is finished, and
// the error says so.
func TestCloseDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		cfg := testConfig(t)
		l := start(t, cfg, options{hook: func(e *Entry) {
			if e.RequestID == "r0" {
				<-release
			}
		}})
		for i := range 10 {
			l.Record(entry(fmt.Sprintf("r%d", i)))
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		closed := make(chan error)
		go func() { closed <- l.Close(ctx) }()
		time.Sleep(2 * time.Second) // the deadline passes while r0 is being written
		synctest.Wait()
		close(release)
		err := <-closed
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "9 queued payloads dropped") {
			t.Errorf("Close = %v; want DeadlineExceeded and 9 dropped", err)
		}
		if s, want := l.Stats(), (Stats{Written: 1, Dropped: 9}); s != want {
			t.Errorf("Stats = %+v, want %+v", s, want)
		}
		if err2 := l.Close(context.Background()); err2 != err {
			t.Errorf("second Close = %v, want the first's %v", err2, err)
		}
	})
}

// TestPanicDropsEntry checks that a panic while writing one entry drops it,
// is logged, and leaves the goroutine running.
func TestPanicDropsEntry(t *testing.T) {
	var logged bytes.Buffer
	cfg := testConfig(t)
	l, err := newLogger(cfg, slog.New(slog.NewTextHandler(&logged, nil)), options{hook: func(e *Entry) {
		if e.RequestID == "bad" {
			panic("boom")
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	l.Record(entry("bad"))
	l.Record(entry("good"))
	closeLogger(t, l)
	if s, want := l.Stats(), (Stats{Written: 1, Dropped: 1}); s != want {
		t.Errorf("Stats = %+v, want %+v", s, want)
	}
	if !strings.Contains(logged.String(), "payload logger panicked") {
		t.Errorf("log = %q, want the panic", logged.String())
	}
}

// TestWriteFailureDrops checks that a failing file drops entries, counts
// them and logs once, never the payload itself.
func TestWriteFailureDrops(t *testing.T) {
	var logged bytes.Buffer
	cfg := testConfig(t)
	l, err := newLogger(cfg, slog.New(slog.NewTextHandler(&logged, nil)), options{})
	if err != nil {
		t.Fatal(err)
	}
	l.file.f.Close() // every write now fails
	for range 3 {
		e := entry("r")
		e.Request = []byte("secret-body")
		l.Record(e)
	}
	l.Close(context.Background())
	if s, want := l.Stats(), (Stats{Dropped: 3}); s != want {
		t.Errorf("Stats = %+v, want %+v", s, want)
	}
	if n := strings.Count(logged.String(), "payload log write failed"); n != 1 {
		t.Errorf("logged the failure %d times, want once:\n%s", n, logged.String())
	}
	if strings.Contains(logged.String(), "secret-body") {
		t.Error("the main log holds a payload")
	}
}

// BenchmarkRecord measures the request-path cost of Record, with a real
// writer draining to a file (entries beyond its pace are dropped, which
// is the cheaper path of the two).
func BenchmarkRecord(b *testing.B) {
	l := start(b, testConfig(b), options{})
	e := entry("r")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Record(e)
		}
	})
	b.StopTimer()
	s := l.Stats()
	b.ReportMetric(float64(s.Dropped)/float64(s.Dropped+s.Written+1), "dropped/op")
}

// BenchmarkWrite measures the writer's cost per entry (redaction, cap,
// encoding, write) for a 16 KiB chat request, which bounds its pace.
func BenchmarkWrite(b *testing.B) {
	cfg := testConfig(b)
	f, err := openRotating(cfg.Path, cfg.MaxFileBytes, quiet)
	if err != nil {
		b.Fatal(err)
	}
	defer f.close()
	enc := newEncoder(newRedactor(nil), cfg.MaxBytes)
	e := entry("r")
	msg := strings.Repeat("The quick brown fox, call me at bob@example.com, 1234 5678. ", 270)
	e.Request = []byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"` + msg + `"}]}`)
	b.SetBytes(int64(len(e.Request) + len(e.Response)))
	b.ReportAllocs()
	for b.Loop() {
		line, _, err := enc.encode(&e)
		if err != nil {
			b.Fatal(err)
		}
		if err := f.write(line); err != nil {
			b.Fatal(err)
		}
	}
}

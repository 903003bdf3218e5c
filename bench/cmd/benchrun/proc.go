package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. It is
// 100 on every Linux architecture Go supports (the kernel's HZ may differ,
// but what /proc reports is always scaled to USER_HZ).
const clockTicks = 100

// child is a process the harness started. It runs in its own process group,
// so stopping it also stops what it spawned (nginx workers, node helpers).
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // set when done is closed
	log  string
}

// startChild starts argv with its output in logPath ("" discards it). The
// command runs under "sh -c 'ulimit -n HARD; exec …'" so that it gets the
// whole file-descriptor allowance whatever the soft limit of the caller was
// (Go raises its own soft limit but restores the original one for children).
func startChild(name string, argv []string, env []string, dir, logPath string) (*child, error) {
	script := `ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"`
	cmd := exec.Command("/bin/sh", append([]string{"-c", script, "sh"}, argv...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if logPath != "" {
		f, err := os.Create(logPath)
		if err != nil {
			return nil, err
		}
		cmd.Stdout, cmd.Stderr = f, f
		defer f.Close() // the child keeps its own descriptor
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// pid is the child's process id (the program itself: sh exec'd into it).
func (c *child) pid() int { return c.cmd.Process.Pid }

// exited reports whether the child has ended.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// gone says why the child is no longer running, or nil while it runs.
func (c *child) gone() error {
	if c == nil || !c.exited() {
		return nil
	}
	return fmt.Errorf("%s exited: %v; log: %s", c.name, c.err, c.logTail(300))
}

// stop sends SIGTERM to the child's process group, then SIGKILL after grace.
func (c *child) stop(grace time.Duration) {
	if c == nil {
		return
	}
	if c.exited() {
		// The program died on its own (targets now run for the whole run,
		// so this can happen mid-run); what it spawned may still be there,
		// e.g. nginx workers whose master was killed. The kernel reuses no
		// pid while a process group of that id has members, so when no
		// process has the pid the group can only be our leftovers (or
		// empty: ESRCH). If a process has it, the pid was reused and the
		// group is someone else's: leave it.
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", c.pid())); errors.Is(err, os.ErrNotExist) {
			_ = syscall.Kill(-c.pid(), syscall.SIGKILL)
		}
		return
	}
	_ = syscall.Kill(-c.pid(), syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(grace):
		_ = syscall.Kill(-c.pid(), syscall.SIGKILL)
		<-c.done
	}
}

// logTail is the end of the child's log, for error messages.
func (c *child) logTail(n int) string {
	if c == nil || c.log == "" {
		return ""
	}
	b, err := os.ReadFile(c.log)
	if err != nil {
		return ""
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(plain(string(b)))
}

// ansiEscape matches terminal colour and cursor sequences (Portkey's start-up
// spinner), which would otherwise end up in the Markdown report.
var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

// plain removes terminal escapes and control characters from s.
func plain(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' || !unicode.IsControl(r) {
			return r
		}
		return -1
	}, ansiEscape.ReplaceAllString(s, ""))
}

// waitHTTP polls url until it answers 200, the child dies or timeout passes.
// It returns how long that took.
func waitHTTP(ctx context.Context, url string, c *child, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start), nil
			}
		}
		if c != nil && c.exited() {
			return 0, fmt.Errorf("%s exited before it was ready: %v; log: %s", c.name, c.err, c.logTail(600))
		}
		if time.Since(start) > timeout {
			return 0, fmt.Errorf("%s not ready after %s (last error: %v)", url, timeout, err)
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		time.Sleep(time.Millisecond)
	}
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// portFree reports whether 127.0.0.1:port can be listened on.
func portFree(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// procStat is what the harness reads of /proc/PID/stat.
type procStat struct {
	ppid       int
	cpuTicks   int64 // utime + stime
	rssPages   int64
	numThreads int64
}

// parseStat parses the contents of /proc/PID/stat. The command name is in
// parentheses and may itself hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errors.New("no ')' in stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); field n is f[n-3].
	if len(f) < 22 {
		return procStat{}, fmt.Errorf("stat has %d fields after the name", len(f))
	}
	num := func(n int) int64 {
		v, _ := strconv.ParseInt(f[n-3], 10, 64)
		return v
	}
	return procStat{
		ppid:       int(num(4)),
		cpuTicks:   num(14) + num(15),
		numThreads: num(20),
		rssPages:   num(24),
	}, nil
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseStat(b)
}

// allStats reads the stat of every process.
func allStats() map[int]procStat {
	out := map[int]procStat{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(pid); err == nil {
			out[pid] = st
		}
	}
	return out
}

// tree returns roots and all their descendants.
func tree(roots []int) []int {
	stats := allStats()
	children := map[int][]int{}
	for pid, st := range stats {
		children[st.ppid] = append(children[st.ppid], pid)
	}
	seen := map[int]bool{}
	var out []int
	queue := append([]int(nil), roots...)
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		if _, ok := stats[p]; ok {
			out = append(out, p)
		}
		queue = append(queue, children[p]...)
	}
	return out
}

// usage is the summed CPU time and RSS of a set of processes.
type usage struct {
	cpuTicks int64
	rssBytes int64
	threads  int64
	procs    int
}

func measure(pids []int) usage {
	var u usage
	page := int64(os.Getpagesize())
	for _, p := range pids {
		st, err := readStat(p)
		if err != nil {
			continue
		}
		u.cpuTicks += st.cpuTicks
		u.rssBytes += st.rssPages * page
		u.threads += st.numThreads
		u.procs++
	}
	return u
}

// haveSchedstat: the kernel keeps per-thread run time in nanoseconds
// (CONFIG_SCHED_INFO, on in Debian's and most distributions' kernels).
var haveSchedstat = func() bool {
	_, err := os.Stat("/proc/self/task/" + strconv.Itoa(os.Getpid()) + "/schedstat")
	return err == nil
}()

// cpuTime is the CPU time pids have used so far. /proc/PID/stat counts in
// 10 ms ticks, which cannot tell 1% of a core from 4% in a 250 ms window
// (one tick either way), so it sums the nanoseconds of every thread in
// /proc/PID/task/TID/schedstat instead, falling back to the ticks when the
// kernel has no schedstat. A thread that ends takes its time with it; the
// caller treats a decrease as zero.
func cpuTime(pids []int) time.Duration {
	var total time.Duration
	for _, pid := range pids {
		if !haveSchedstat {
			if st, err := readStat(pid); err == nil {
				total += time.Duration(st.cpuTicks) * (time.Second / clockTicks)
			}
			continue
		}
		dir := fmt.Sprintf("/proc/%d/task", pid)
		tasks, _ := os.ReadDir(dir)
		for _, task := range tasks {
			b, err := os.ReadFile(filepath.Join(dir, task.Name(), "schedstat"))
			if err != nil {
				continue // the thread ended meanwhile
			}
			if f := strings.Fields(string(b)); len(f) > 0 {
				ns, _ := strconv.ParseInt(f[0], 10, 64)
				total += time.Duration(ns)
			}
		}
	}
	return total
}

// listeners returns the processes holding a listening TCP socket on port
// (any local address), found through /proc/net/tcp{,6} and /proc/*/fd.
func listeners(port int) []int {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" { // 0A = LISTEN
				continue
			}
			local := fields[1]
			j := strings.LastIndexByte(local, ':')
			p, err := strconv.ParseInt(local[j+1:], 16, 32)
			if err == nil && int(p) == port {
				inodes[fields[9]] = true
			}
		}
		fh.Close()
	}
	if len(inodes) == 0 {
		return nil
	}
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
		for _, fd := range fds {
			link, err := os.Readlink(fd)
			if err == nil && strings.HasPrefix(link, "socket:[") && inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// sampler samples a set of processes (and optionally a Prometheus endpoint)
// periodically while a scenario runs, keeping the peaks.
type sampler struct {
	pids    func() []int
	metrics string // tollgate's /metrics URL, or ""
	every   time.Duration
	// scrapeEvery spaces the /metrics scrapes, at least every apart; the
	// first and the last sample always scrape. A scrape renders some 250
	// series, about a millisecond of the gateway's CPU on a fresh
	// connection: every 250 ms that was a load no other target carried,
	// landing on the requests being timed.
	scrapeEvery time.Duration
	lastScrape  time.Time

	mu            sync.Mutex
	maxRSS        int64
	maxThreads    int64
	maxGoroutines float64
	maxPromRSS    float64
	stop          chan struct{}
	done          chan struct{}
}

func newSampler(pids func() []int, metrics string, every, scrapeEvery time.Duration) *sampler {
	return &sampler{pids: pids, metrics: metrics, every: every, scrapeEvery: max(every, scrapeEvery)}
}

// start begins sampling; it takes one sample at once.
func (s *sampler) start() {
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	s.sample(true)
	go func() {
		defer close(s.done)
		t := time.NewTicker(s.every)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				s.sample(false)
			}
		}
	}()
}

// finish stops sampling after one last sample.
func (s *sampler) finish() {
	close(s.stop)
	<-s.done
	s.sample(true)
}

// sample reads the processes, and /metrics when scrape is set or
// scrapeEvery has passed since the last scrape.
func (s *sampler) sample(scrape bool) {
	u := measure(s.pids())
	var gor, prss float64
	if s.metrics != "" && (scrape || time.Since(s.lastScrape) >= s.scrapeEvery) {
		s.lastScrape = time.Now()
		gor, prss = scrapeGo(s.metrics)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxRSS = max(s.maxRSS, u.rssBytes)
	s.maxThreads = max(s.maxThreads, u.threads)
	s.maxGoroutines = max(s.maxGoroutines, gor)
	s.maxPromRSS = max(s.maxPromRSS, prss)
}

// scrapeGo reads go_goroutines and process_resident_memory_bytes from a
// Prometheus text endpoint; zeros when unavailable.
func scrapeGo(url string) (goroutines, rss float64) {
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "go_goroutines "):
			goroutines, _ = strconv.ParseFloat(strings.TrimPrefix(line, "go_goroutines "), 64)
		case strings.HasPrefix(line, "process_resident_memory_bytes "):
			rss, _ = strconv.ParseFloat(strings.TrimPrefix(line, "process_resident_memory_bytes "), 64)
		}
	}
	return goroutines, rss
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/tollgate-gw/tollgate/internal/mockupstream"
)

// mockUpstreamUsage heads the --help text of "tollgate mock-upstream".
const mockUpstreamUsage = `Usage:
  tollgate mock-upstream [--listen ADDR] [--latency D] [--ttft D] [--tps N] [--reply-tokens N] [--require-key KEY]

Runs a fake LLM provider speaking the OpenAI API (base URL http://ADDR/v1) and
the Anthropic Messages API (base URL http://ADDR), over HTTP/1.1 and over
HTTP/2 with prior knowledge (h2c, for providers with protocol http2).
Answers are deterministic. Faults are chosen per request with the
X-Mock-Fault header (for example "status=429,retry_after=1", "hang",
"reset_after=3") or with rules posted to /_faults; what it received is at
GET /_stats.

Flags:
`

// mockUpstreamShutdownGrace bounds how long in-flight requests may take to
// finish once the command is asked to stop.
const mockUpstreamShutdownGrace = 5 * time.Second

// mockUpstreamFlags are the parsed flags of "tollgate mock-upstream".
type mockUpstreamFlags struct {
	listen string
	opts   mockupstream.Options
}

// runMockUpstream runs "tollgate mock-upstream": it serves the mock provider
// until ctx is cancelled, then shuts it down gracefully.
func runMockUpstream(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseMockUpstream(args, stderr)
	if err != nil {
		return err
	}
	rootURL, shutdown, err := mockupstream.Listen(f.listen, f.opts)
	if err != nil {
		return fmt.Errorf("mock-upstream: %w", err)
	}
	fmt.Fprintf(stdout, "mock-upstream listening on %s\n", rootURL)
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), mockUpstreamShutdownGrace)
	defer cancel()
	if err := shutdown(stopCtx); err != nil {
		return fmt.Errorf("mock-upstream: %w", err)
	}
	return nil
}

// parseMockUpstream parses the flags of "tollgate mock-upstream". --help
// prints the usage to stderr and returns flag.ErrHelp.
func parseMockUpstream(args []string, stderr io.Writer) (mockUpstreamFlags, error) {
	var f mockUpstreamFlags
	listen := os.Getenv("TOLLGATE_MOCK_LISTEN")
	if listen == "" {
		listen = "127.0.0.1:9090"
	}
	fs := flag.NewFlagSet("mock-upstream", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.listen, "listen", listen, "listen `ADDR`; port 0 picks a free one (env TOLLGATE_MOCK_LISTEN)")
	fs.DurationVar(&f.opts.Latency, "latency", 0, "delay before the response headers, e.g. 200ms")
	fs.DurationVar(&f.opts.TTFT, "ttft", 0, "streams: delay before the first content event")
	fs.Float64Var(&f.opts.TokensPerSecond, "tps", 0, "streams: content tokens per second after the first; 0 is unpaced")
	fs.IntVar(&f.opts.ReplyTokens, "reply-tokens", 0, "length of a text answer in tokens, before max_tokens cuts it; 0 is the default (12)")
	fs.StringVar(&f.opts.RequireKey, "require-key", "", "API `KEY` clients must send (OpenAI: Authorization: Bearer KEY; Anthropic: x-api-key)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), mockUpstreamUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("mock-upstream: unexpected argument %q", fs.Arg(0))
	}
	return f, validateMockUpstream(f)
}

// validateMockUpstream rejects negative timings, naming every bad flag.
func validateMockUpstream(f mockUpstreamFlags) error {
	var bad []string
	if f.opts.Latency < 0 {
		bad = append(bad, "--latency")
	}
	if f.opts.TTFT < 0 {
		bad = append(bad, "--ttft")
	}
	if !(f.opts.TokensPerSecond >= 0) { // also rejects NaN
		bad = append(bad, "--tps")
	}
	if f.opts.ReplyTokens < 0 {
		bad = append(bad, "--reply-tokens")
	}
	if len(bad) > 0 {
		return errors.New("mock-upstream: " + strings.Join(bad, ", ") + " must not be negative")
	}
	return nil
}

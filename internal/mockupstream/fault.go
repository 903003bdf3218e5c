package mockupstream

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// FaultHeader is the request header that chooses a fault for that request
// alone. When present and non-empty it wins over any [Rule], and no rule's
// count is spent.
const FaultHeader = "X-Mock-Fault"

// Rule injects a fault into matching requests. It is the JSON body of
// POST /_faults, for example {"model":"m","fault":"status=503","times":2}.
//
// Fault is a comma-separated list of items; spaces around items are ignored:
//
//	status=N            answer HTTP N (400..599) with an error body in the API's format
//	retry_after=S       with status: Retry-After: S (seconds, a non-negative number)
//	retry_after_ms=N    with status: retry-after-ms: N
//	code=X, type=X      override the error's code / type (also of stream_error_after)
//	hang                never answer; return when the client goes away
//	reset_after=N       stream: N content events, then abort the connection;
//	                    non-stream: abort before any response
//	malformed           non-stream: 200 with a body that is not JSON;
//	                    stream: one data line that is not JSON before the first content event
//	context_limit=N     400 with the provider's context-length error if the prompt estimate > N
//	latency=D, ttft=D   per-request Options.Latency / Options.TTFT (Go durations)
//	tps=F               per-request Options.TokensPerSecond
//	stream_error_after=N  stream: N content events, then an in-stream error and the end
//
// A content event is one streamed delta: a text token, or one fragment of a
// tool call. When a stream has fewer than N content events, reset_after and
// stream_error_after fire just before the finishing events.
type Rule struct {
	// Model selects requests whose "model" field equals it; "" or "*" match
	// every request, including those without a model.
	Model string `json:"model"`
	// Fault is the spec applied to matching requests.
	Fault string `json:"fault"`
	// Times is how many matching requests the rule applies to before it is
	// dropped; 0 (or less) keeps it until the rules are cleared.
	Times int `json:"times"`
}

// liveRule is a Rule with its parsed fault and remaining count.
type liveRule struct {
	Rule
	fault fault
	err   error // why Fault does not parse; such a rule answers 400
	left  int   // remaining applications when Times > 0
}

// fault is a parsed fault spec. The zero value is not "no fault": use
// parseFault, which sets the -1 "not set" markers.
type fault struct {
	spec             string
	status           int
	retryAfter       string
	retryAfterMS     string
	code             string
	typ              string
	hang             bool
	resetAfter       int // -1: not set
	malformed        bool
	contextLimit     int // 0: not set
	latency          *time.Duration
	ttft             *time.Duration
	tps              *float64
	streamErrorAfter int // -1: not set
}

// noFault is the fault of a request that asked for none.
var noFault = fault{resetAfter: -1, streamErrorAfter: -1}

// AddFault appends rule to the fault rules; rules are checked in insertion
// order and the first live match applies. A rule whose Fault does not parse
// still matches, and answers 400 with the parse error.
func (s *Server) AddFault(rule Rule) {
	f, err := parseFault(rule.Fault)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = append(s.rules, &liveRule{Rule: rule, fault: f, err: err, left: rule.Times})
}

// ClearFaults removes every fault rule, as DELETE /_faults does.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = nil
}

// Faults returns the live rules in order; Times is what is left of each.
func (s *Server) Faults() []Rule {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Rule, 0, len(s.rules))
	for _, r := range s.rules {
		rule := r.Rule
		rule.Times = r.left
		out = append(out, rule)
	}
	return out
}

// matchRuleLocked returns the first live rule matching model, after spending
// one of its applications, or nil when none matches.
func (s *Server) matchRuleLocked(model string) *liveRule {
	for i, r := range s.rules {
		if r.Model != "" && r.Model != "*" && r.Model != model {
			continue
		}
		if r.Times > 0 {
			r.left--
			if r.left <= 0 {
				s.rules = slices.Delete(s.rules, i, i+1)
			}
		}
		return r
	}
	return nil
}

// parseFault parses a fault spec (see [Rule]); "" is no fault. The spec is
// kept in the result even on error, for the stats.
func parseFault(spec string) (fault, error) {
	f := noFault
	f.spec = spec
	for item := range strings.SplitSeq(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		key, value, _ := strings.Cut(item, "=")
		if err := f.set(strings.TrimSpace(key), strings.TrimSpace(value)); err != nil {
			bad := noFault
			bad.spec = spec
			return bad, fmt.Errorf("fault item %q: %w", item, err)
		}
	}
	return f, nil
}

// set applies one key=value item of a fault spec.
func (f *fault) set(key, value string) error {
	var err error
	switch key {
	case "status":
		f.status, err = intIn(value, 400, 599)
	case "retry_after":
		f.retryAfter, err = seconds(value)
	case "retry_after_ms":
		_, err = intIn(value, 0, math.MaxInt32)
		f.retryAfterMS = value
	case "code":
		f.code, err = nonEmpty(value)
	case "type":
		f.typ, err = nonEmpty(value)
	case "hang":
		f.hang, err = boolFlag(value)
	case "malformed":
		f.malformed, err = boolFlag(value)
	case "reset_after":
		f.resetAfter, err = intIn(value, 0, math.MaxInt32)
	case "stream_error_after":
		f.streamErrorAfter, err = intIn(value, 0, math.MaxInt32)
	case "context_limit":
		f.contextLimit, err = intIn(value, 1, math.MaxInt32)
	case "latency":
		f.latency, err = duration(value)
	case "ttft":
		f.ttft, err = duration(value)
	case "tps":
		f.tps, err = rate(value)
	default:
		err = errors.New("unknown key")
	}
	return err
}

func intIn(value string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(value)
	if err != nil {
		return 0, fmt.Errorf("not an integer: %w", err)
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%d is outside %d..%d", n, lo, hi)
	}
	return n, nil
}

func seconds(value string) (string, error) {
	v, err := strconv.ParseFloat(value, 64)
	if err != nil {
		return "", fmt.Errorf("not a number of seconds: %w", err)
	}
	if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return "", fmt.Errorf("%s is not a non-negative number of seconds", value)
	}
	return value, nil
}

func nonEmpty(value string) (string, error) {
	if value == "" {
		return "", errors.New("empty value")
	}
	return value, nil
}

func boolFlag(value string) (bool, error) {
	if value == "" {
		return true, nil
	}
	b, err := strconv.ParseBool(value)
	if err != nil {
		return false, fmt.Errorf("not a boolean: %w", err)
	}
	return b, nil
}

func duration(value string) (*time.Duration, error) {
	d, err := time.ParseDuration(value)
	if err != nil {
		return nil, fmt.Errorf("not a duration: %w", err)
	}
	if d < 0 {
		return nil, fmt.Errorf("negative duration %s", d)
	}
	return &d, nil
}

func rate(value string) (*float64, error) {
	v, err := strconv.ParseFloat(value, 64)
	if err != nil {
		return nil, fmt.Errorf("not a number: %w", err)
	}
	if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return nil, fmt.Errorf("%s is not a non-negative rate", value)
	}
	return &v, nil
}

// timing returns opts with the fault's per-request overrides applied.
func (f fault) timing(opts Options) Options {
	if f.latency != nil {
		opts.Latency = *f.latency
	}
	if f.ttft != nil {
		opts.TTFT = *f.ttft
	}
	if f.tps != nil {
		opts.TokensPerSecond = *f.tps
	}
	return opts
}

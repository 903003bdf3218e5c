package config

import (
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults for the per-request policies a profile sets and a model may
// override.
const (
	DefaultConnectTimeout   = 5 * time.Second
	DefaultFirstByteTimeout = 60 * time.Second
	DefaultIdleTimeout      = 60 * time.Second
	DefaultContextPolicy    = ContextReject
	DefaultRetryBudget      = 0.2
)

// DefaultBreaker is a profile's breaker when the file sets none of it.
var DefaultBreaker = Breaker{Failures: 5, ErrorRate: 0.5, MinRequests: 20, Window: 60 * time.Second, Cooldown: 30 * time.Second}

// ContextPolicies lists the context-window policies.
var ContextPolicies = []string{ContextReject, ContextTrim, ContextFallback}

// Balancings lists the balancing strategies.
var Balancings = []string{BalanceWeighted, BalanceLatency}

// timeoutNodes keeps the value nodes of the first_byte, idle and total a
// file wrote, for the warnings that one exceeds the limit it runs under.
type timeoutNodes struct {
	firstByte, idle, total *yaml.Node
}

// timeouts reads a timeouts mapping over t: only the keys written change.
// A profile may not set total: its total is request_timeout, and two keys
// for one limit would only disagree.
func (d *decoder) timeouts(t *Timeouts, n *yaml.Node, what string, profile bool) timeoutNodes {
	f := d.fields(n, what, "connect", "first_byte", "idle", "total")
	var nodes timeoutNodes
	set := func(k string, dst *time.Duration) *yaml.Node {
		q, has := f[k]
		if !has {
			return nil
		}
		v, ok := d.positiveDuration(q.val, what+"."+k)
		if !ok {
			return nil
		}
		*dst = v
		return deref(q.val)
	}
	set("connect", &t.Connect)
	nodes.firstByte = set("first_byte", &t.FirstByte)
	nodes.idle = set("idle", &t.Idle)
	if q, has := f["total"]; has && profile {
		d.errorf(q.key, "%s: total cannot be set on a profile: a profile's total is its request_timeout; set %s.request_timeout instead",
			what, strings.TrimSuffix(what, ".timeouts"))
	} else {
		nodes.total = set("total", &t.Total)
	}
	return nodes
}

// exceeds warns when a written first_byte or idle is longer than the total
// it runs under: the total would always fire first. where names that total.
func (d *decoder) exceeds(nodes timeoutNodes, t Timeouts, what string, total time.Duration, where string) {
	check := func(n *yaml.Node, k string, v time.Duration) {
		if n != nil && total > 0 && v > total {
			d.warnf(n, "%s.%s: %s exceeds %s (%s), so it can never fire", what, k, v, where, total)
		}
	}
	check(nodes.firstByte, "first_byte", t.FirstByte)
	check(nodes.idle, "idle", t.Idle)
}

// holdBack reads a hold_back value: a mapping {duration, tokens}, or off
// (also written false). off is true for the latter.
func (d *decoder) holdBack(n *yaml.Node, what string) (hb HoldBack, off, ok bool) {
	n = deref(n)
	if d.failed[n] {
		return HoldBack{}, false, false
	}
	if n.Kind == yaml.ScalarNode && !isNull(n) {
		switch t := n.ShortTag(); {
		case t == "!!bool" && n.Value == "false",
			t == "!!str" && (n.Value == "off" || d.expanded[n] && n.Value == "false"):
			return HoldBack{}, true, true
		}
		d.errorf(n, "%s: want {duration: …, tokens: …} or off, got %s", what, describe(n))
		return HoldBack{}, false, false
	}
	f := d.fields(n, what, "duration", "tokens")
	if n.Kind != yaml.MappingNode && !isNull(n) {
		return HoldBack{}, false, false // fields reported it
	}
	if _, has := f["duration"]; !has {
		if _, has := f["tokens"]; !has {
			d.errorf(n, "%s: give duration, tokens or both (or write off to hold nothing back)", what)
			return HoldBack{}, false, false
		}
	}
	ok = true
	if q, has := f["duration"]; has {
		hb.Duration, ok = d.positiveDuration(q.val, what+".duration")
	}
	if q, has := f["tokens"]; has {
		v, good := d.intRange(q.val, what+".tokens", 1, maxInt)
		hb.Tokens, ok = v, ok && good
	}
	hb.Set = ok
	return hb, false, ok
}

// breaker reads a breaker mapping over b: only the keys written change.
func (d *decoder) breaker(b *Breaker, n *yaml.Node, what string) {
	f := d.fields(n, what, "failures", "error_rate", "min_requests", "window", "cooldown")
	if q, has := f["failures"]; has {
		if v, ok := d.intRange(q.val, what+".failures", 1, maxInt); ok {
			b.Failures = v
		}
	}
	if q, has := f["error_rate"]; has {
		if v, ok := d.fraction(q.val, what+".error_rate", "a share of requests", true); ok {
			b.ErrorRate = v
		}
	}
	if q, has := f["min_requests"]; has {
		if v, ok := d.intRange(q.val, what+".min_requests", 1, maxInt); ok {
			b.MinRequests = v
		}
	}
	if q, has := f["window"]; has {
		if v, ok := d.positiveDuration(q.val, what+".window"); ok {
			b.Window = v
		}
	}
	if q, has := f["cooldown"]; has {
		if v, ok := d.positiveDuration(q.val, what+".cooldown"); ok {
			b.Cooldown = v
		}
	}
}

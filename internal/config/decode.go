package config

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// decoder walks the YAML node tree by hand rather than through yaml.Decode:
// that way every problem carries its node's line, decoding goes on after the
// first problem, and environment references are expanded before any value is
// given a type. Its methods report problems and return ok=false; they never
// stop the walk.
type decoder struct {
	file     string
	lookup   func(string) (string, bool)
	problems []Problem
	// expanded marks scalars whose text came from ${…} expansion: their YAML
	// tag says "string", but a number or duration may be what they hold.
	expanded map[*yaml.Node]bool
	// failed marks scalars whose expansion failed and was reported; decoding
	// them again would only repeat the news.
	failed map[*yaml.Node]bool
	// badProviders names providers that had errors, so their models are
	// spared follow-on errors (an unpriced model whose provider kind is wrong).
	badProviders map[string]bool
	// aliasNames holds the names under aliases:, for clearer messages.
	aliasNames map[string]bool
	// deploymentLines maps each deployment ID to the line that claimed it.
	deploymentLines map[string]int
}

func newDecoder(file string, lookup func(string) (string, bool)) *decoder {
	if lookup == nil {
		lookup = func(string) (string, bool) { return "", false }
	}
	return &decoder{
		file:     file,
		lookup:   lookup,
		expanded: make(map[*yaml.Node]bool),
		failed:   make(map[*yaml.Node]bool),

		badProviders:    make(map[string]bool),
		aliasNames:      make(map[string]bool),
		deploymentLines: make(map[string]int),
	}
}

func (d *decoder) add(n *yaml.Node, sev Severity, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.problems = append(d.problems, Problem{File: d.file, Line: line, Severity: sev, Message: fmt.Sprintf(format, args...)})
}

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) { d.add(n, Error, format, args...) }

func (d *decoder) warnf(n *yaml.Node, format string, args ...any) { d.add(n, Warning, format, args...) }

// pair is one key and its value in a YAML mapping.
type pair struct {
	key, val *yaml.Node
	name     string // key.Value
}

// deref follows YAML aliases (*name) to the anchored node.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 16; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names a node's type for "want X, got Y" messages. It never
// includes the value, which may be a secret.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "nothing"
		case "!!bool":
			return "a boolean"
		case "!!int", "!!float":
			return "a number"
		}
		return "a string"
	}
	return "an unsupported YAML node"
}

// entries returns the pairs of a mapping, reporting non-string keys, merge
// keys and duplicates. A null value (`key:` with nothing after it) is an
// empty mapping. ok is false when n is not a mapping at all.
func (d *decoder) entries(n *yaml.Node, what string) (ps []pair, ok bool) {
	n = deref(n)
	if isNull(n) {
		return nil, true
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s: want a mapping, got %s", what, describe(n))
		return nil, false
	}
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		switch {
		case k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge":
			d.errorf(k, "%s: merge keys (<<) are not supported; write the keys out", what)
			continue
		case k.Kind != yaml.ScalarNode || k.ShortTag() == "!!null":
			d.errorf(k, "%s: keys must be strings, got %s", what, describe(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorf(k, "%s: duplicate key %q (first at line %d)", what, k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		ps = append(ps, pair{key: k, val: v, name: k.Value})
	}
	return ps, true
}

// fields is entries for a mapping with a fixed set of keys: unknown keys are
// reported and dropped. It returns the known pairs by key.
func (d *decoder) fields(n *yaml.Node, what string, known ...string) map[string]pair {
	ps, _ := d.entries(n, what)
	out := make(map[string]pair, len(ps))
	for _, p := range ps {
		if !contains(known, p.name) {
			d.errorf(p.key, "%s: unknown key %q (known keys: %s)", what, p.name, strings.Join(known, ", "))
			continue
		}
		out[p.name] = p
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// scalar checks that n is a scalar whose expansion did not fail.
func (d *decoder) scalar(n *yaml.Node, what, want string) (*yaml.Node, bool) {
	n = deref(n)
	if d.failed[n] {
		return n, false
	}
	if n.Kind != yaml.ScalarNode || isNull(n) {
		d.errorf(n, "%s: want %s, got %s", what, want, describe(n))
		return n, false
	}
	return n, true
}

// str decodes a string. Numbers are taken as their text (a header value of
// 2 is "2"); booleans and nulls are type errors, being almost always a slip.
func (d *decoder) str(n *yaml.Node, what string) (string, bool) {
	n, ok := d.scalar(n, what, "a string")
	if !ok {
		return "", false
	}
	if t := n.ShortTag(); t == "!!bool" || t == "!!binary" {
		d.errorf(n, "%s: want a string, got %s (quote it if you mean the text)", what, describe(n))
		return "", false
	}
	return n.Value, true
}

// numeric returns n's text when n may hold a number: a YAML int or float, or
// a string produced by ${…} expansion.
func (d *decoder) numeric(n *yaml.Node, what, want string) (*yaml.Node, bool) {
	n, ok := d.scalar(n, what, want)
	if !ok {
		return n, false
	}
	switch n.ShortTag() {
	case "!!int", "!!float":
		return n, true
	case "!!str":
		if d.expanded[n] {
			return n, true
		}
	}
	d.errorf(n, "%s: want %s, got %s", what, want, describe(n))
	return n, false
}

// decimal decodes a number exactly, as a rational: prices and budgets are
// written in decimal and must not pick up binary float error on the way to
// integer money.
func (d *decoder) decimal(n *yaml.Node, what string) (*big.Rat, bool) {
	n, ok := d.numeric(n, what, "a number")
	if !ok {
		return nil, false
	}
	text := strings.ReplaceAll(strings.TrimSpace(n.Value), "_", "")
	r, ok := new(big.Rat).SetString(text)
	if !ok || strings.Contains(text, "/") { // big.Rat would take "1/3"
		d.errorf(n, "%s: want a number, got %q", what, n.Value)
		return nil, false
	}
	return r, true
}

// integer decodes a whole number (1e6 and 128_000 are fine, 1.5 is not).
func (d *decoder) integer(n *yaml.Node, what string) (int64, bool) {
	node := deref(n)
	r, ok := d.decimal(n, what)
	if !ok {
		return 0, false
	}
	if !r.IsInt() || !r.Num().IsInt64() {
		d.errorf(node, "%s: want a whole number, got %s", what, node.Value)
		return 0, false
	}
	return r.Num().Int64(), true
}

// intRange decodes a whole number in [lo, hi].
func (d *decoder) intRange(n *yaml.Node, what string, lo, hi int64) (int, bool) {
	v, ok := d.integer(n, what)
	if !ok {
		return 0, false
	}
	if v < lo || v > hi {
		if hi == maxInt {
			d.errorf(deref(n), "%s: must be at least %d, got %d", what, lo, v)
		} else {
			d.errorf(deref(n), "%s: must be between %d and %d, got %d", what, lo, hi, v)
		}
		return 0, false
	}
	return int(v), true
}

var bigOne = big.NewRat(1, 1)

const maxInt = int64(^uint32(0) >> 1) // int32 max: token counts and retries fit

// scaled decodes a non-negative decimal and returns it times 10^digits as an
// integer. More decimal places than that would be rounded away, so they are
// an error: no silent rounding of money.
func (d *decoder) scaled(n *yaml.Node, what string, digits int, unit string) (int64, bool) {
	node := deref(n)
	r, ok := d.decimal(n, what)
	if !ok {
		return 0, false
	}
	if r.Sign() < 0 {
		d.errorf(node, "%s: must not be negative, got %s", what, node.Value)
		return 0, false
	}
	scale := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(digits)), nil))
	r.Mul(r, scale)
	if !r.IsInt() {
		d.errorf(node, "%s: %s has more than %d decimal places (the smallest unit is %s)", what, node.Value, digits, unit)
		return 0, false
	}
	if !r.Num().IsInt64() {
		d.errorf(node, "%s: %s is too large", what, node.Value)
		return 0, false
	}
	return r.Num().Int64(), true
}

// duration decodes a Go duration string such as "800ms" or "2m30s".
func (d *decoder) duration(n *yaml.Node, what string) (time.Duration, bool) {
	n, ok := d.scalar(n, what, `a duration such as "30s"`)
	if !ok {
		return 0, false
	}
	if t := n.ShortTag(); t == "!!int" || t == "!!float" {
		d.errorf(n, "%s: %s needs a unit, e.g. %sms or %ss", what, n.Value, n.Value, n.Value)
		return 0, false
	}
	v, err := time.ParseDuration(strings.TrimSpace(n.Value))
	if err != nil {
		d.errorf(n, `%s: want a duration such as "30s" or "800ms", got %q`, what, n.Value)
		return 0, false
	}
	return v, true
}

// positiveDuration decodes a duration that must be above zero: a timeout or
// a cooldown of zero would mean "never wait" or "never rest", always a slip.
func (d *decoder) positiveDuration(n *yaml.Node, what string) (time.Duration, bool) {
	v, ok := d.duration(n, what)
	if !ok {
		return 0, false
	}
	if v <= 0 {
		d.errorf(deref(n), "%s: must be positive, got %s", what, v)
		return 0, false
	}
	return v, true
}

// fraction decodes a number in [0, 1], or in (0, 1] when positive is set.
func (d *decoder) fraction(n *yaml.Node, what, of string, positive bool) (float64, bool) {
	r, ok := d.decimal(n, what)
	if !ok {
		return 0, false
	}
	switch {
	case positive && (r.Sign() <= 0 || r.Cmp(bigOne) > 0):
		d.errorf(deref(n), "%s: must be above 0 and at most 1 (%s), got %s", what, of, deref(n).Value)
		return 0, false
	case r.Sign() < 0 || r.Cmp(bigOne) > 0:
		d.errorf(deref(n), "%s: must be between 0 and 1 (%s), got %s", what, of, deref(n).Value)
		return 0, false
	}
	v, _ := r.Float64()
	return v, true
}

// oneOf decodes a string that must be one of allowed; the message lists them.
func (d *decoder) oneOf(n *yaml.Node, what, noun string, allowed []string) (string, bool) {
	s, ok := d.str(n, what)
	if !ok {
		return "", false
	}
	if !contains(allowed, s) {
		d.errorf(deref(n), "%s: unknown %s %q (want %s)", what, noun, s, orList(allowed))
		return "", false
	}
	return s, true
}

// orList renders ["a", "b", "c"] as "a, b or c".
func orList(list []string) string {
	if len(list) < 2 {
		return strings.Join(list, "")
	}
	return strings.Join(list[:len(list)-1], ", ") + " or " + list[len(list)-1]
}

// size decodes a byte count: a whole number of bytes, or a string with a
// unit (B, KB, MB, GB in powers of 1000; KiB, MiB, GiB in powers of 1024).
func (d *decoder) size(n *yaml.Node, what string) (int64, bool) {
	n, ok := d.scalar(n, what, `a size such as "10MiB"`)
	if !ok {
		return 0, false
	}
	v, err := parseSize(n.Value)
	if err != nil {
		d.errorf(n, "%s: %v", what, err)
		return 0, false
	}
	return v, true
}

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	// Longest suffixes first, so "KiB" is not read as "…B".
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9},
	{"b", 1},
}

func parseSize(s string) (int64, error) {
	text := strings.TrimSpace(s)
	num, mult := text, int64(1)
	lower := strings.ToLower(text)
	for _, u := range sizeUnits {
		if strings.HasSuffix(lower, u.suffix) {
			num, mult = strings.TrimSpace(text[:len(text)-len(u.suffix)]), u.mult
			break
		}
	}
	v, err := strconv.ParseInt(strings.ReplaceAll(num, "_", ""), 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf(`want a size such as 1048576, "512KiB" or "10MiB", got %q`, s)
	}
	if v > (1<<63-1)/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return v * mult, nil
}

// stringList decodes a list of strings; a single string is a list of one.
// The returned nodes hold each item's line.
func (d *decoder) stringList(n *yaml.Node, what string) ([]string, []*yaml.Node, bool) {
	n = deref(n)
	if n.Kind == yaml.ScalarNode && !isNull(n) {
		s, ok := d.str(n, what)
		if !ok {
			return nil, nil, false
		}
		return []string{s}, []*yaml.Node{n}, true
	}
	if isNull(n) {
		return nil, nil, true
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "%s: want a list of strings, got %s", what, describe(n))
		return nil, nil, false
	}
	out := make([]string, 0, len(n.Content))
	nodes := make([]*yaml.Node, 0, len(n.Content))
	ok := true
	for i, item := range n.Content {
		s, good := d.str(item, fmt.Sprintf("%s[%d]", what, i))
		if !good {
			ok = false
			continue
		}
		out = append(out, s)
		nodes = append(nodes, deref(item))
	}
	return out, nodes, ok
}

package config

import (
	"regexp"

	"go.yaml.in/yaml/v3"
)

// Payload-logging defaults.
const (
	DefaultPayloadMaxBytes     = 64 << 10  // 64 KiB per body
	DefaultPayloadMaxFileBytes = 100 << 20 // 100 MiB before rotation
)

// PayloadLogging is opt-in logging of request and response bodies, for the
// listed teams only, to a JSON-lines file of its own: bodies never go to the
// main log. The zero value is off. Package payload writes it.
type PayloadLogging struct {
	// Teams are the team names or ids whose payloads are logged; empty means
	// off for everyone.
	Teams []string
	// Path is the JSON-lines file, resolved beside the config file like
	// store.path; "" when the section does not set it (then Teams is empty).
	Path string
	// MaxBytes caps each body (request and response apart) after redaction;
	// default 64 KiB.
	MaxBytes int64
	// MaxFileBytes is the size past which Path is rotated to Path + ".1"
	// (one old file is kept); default 100 MiB.
	MaxFileBytes int64
	// Redact are extra patterns whose matches are replaced, after the
	// built-in ones (e-mail addresses, card numbers, API keys), which are
	// always on. Compiled and checked by Parse; safe for concurrent use.
	Redact []*regexp.Regexp
}

// Enabled reports whether any team's payloads are logged.
func (p PayloadLogging) Enabled() bool { return len(p.Teams) > 0 }

// payloadLogging reads the payload_logging section. It runs after store so
// that a path that would overwrite the database or its journal is caught.
func (d *decoder) payloadLogging(c *Config, p pair) {
	c.PayloadLogging = PayloadLogging{MaxBytes: DefaultPayloadMaxBytes, MaxFileBytes: DefaultPayloadMaxFileBytes}
	if p.val == nil {
		return
	}
	pl := &c.PayloadLogging
	f := d.fields(p.val, "payload_logging", "teams", "path", "max_bytes", "max_file_bytes", "redact")
	if q, ok := f["teams"]; ok {
		pl.Teams = d.payloadTeams(q.val)
	}
	if q, ok := f["max_bytes"]; ok {
		pl.MaxBytes = d.positiveSize(q.val, "payload_logging.max_bytes", pl.MaxBytes)
	}
	if q, ok := f["max_file_bytes"]; ok {
		pl.MaxFileBytes = d.positiveSize(q.val, "payload_logging.max_file_bytes", pl.MaxFileBytes)
	}
	if q, ok := f["redact"]; ok {
		pl.Redact = d.redactPatterns(q.val)
	}
	q, hasPath := f["path"]
	if hasPath {
		if s, ok := d.str(q.val, "payload_logging.path"); ok && s == "" {
			d.errorf(deref(q.val), "payload_logging.path: must not be empty")
		} else if ok {
			pl.Path = besideFile(d.file, s)
		}
	}
	switch {
	case !hasPath && len(pl.Teams) > 0:
		d.errorf(p.key, "payload_logging: path is required when teams is set")
	case pl.Path != "" && (pl.Path == c.Store.Path || pl.Path == c.Store.Journal):
		d.errorf(deref(q.val), "payload_logging.path: %q is the store's own file", pl.Path)
	}
}

// payloadTeams decodes the team list: no empty names; a repeat is harmless
// and only warned about.
func (d *decoder) payloadTeams(n *yaml.Node) []string {
	names, nodes, _ := d.stringList(n, "payload_logging.teams")
	seen := make(map[string]bool, len(names))
	var out []string
	for i, s := range names {
		switch {
		case s == "":
			d.errorf(nodes[i], "payload_logging.teams[%d]: empty team name", i)
		case seen[s]:
			d.warnf(nodes[i], "payload_logging.teams: %q is listed twice", s)
		default:
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// positiveSize decodes a size that must be above zero, returning def when it
// is not valid (the problem is reported).
func (d *decoder) positiveSize(n *yaml.Node, what string, def int64) int64 {
	v, ok := d.size(n, what)
	if !ok {
		return def
	}
	if v <= 0 {
		d.errorf(deref(n), "%s: must be positive, got %d", what, v)
		return def
	}
	return v
}

// redactPatterns compiles the extra redaction patterns (RE2 syntax). A
// pattern that matches the empty string is refused: it would put
// "[REDACTED]" between every two characters.
func (d *decoder) redactPatterns(n *yaml.Node) []*regexp.Regexp {
	srcs, nodes, _ := d.stringList(n, "payload_logging.redact")
	var out []*regexp.Regexp
	for i, s := range srcs {
		re, err := regexp.Compile(s)
		switch {
		case err != nil:
			d.errorf(nodes[i], "payload_logging.redact[%d]: bad regular expression: %v", i, err)
		case re.MatchString(""):
			d.errorf(nodes[i], "payload_logging.redact[%d]: %q matches the empty string", i, s)
		default:
			out = append(out, re)
		}
	}
	return out
}

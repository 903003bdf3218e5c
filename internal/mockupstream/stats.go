package mockupstream

import (
	"encoding/json"
	"fmt"
	"maps"
	"time"
)

// RecordsKept is how many request records Stats keeps (the most recent), so
// that a long benchmark cannot grow memory without end.
const RecordsKept = 64

// Bounds on the other stats, so a flood of made-up model names or paths
// cannot grow memory without end either.
const (
	// maxKeys bounds the Models and Paths maps; later keys count under otherKey.
	maxKeys = 256
	// otherKey collects the counts of keys beyond maxKeys.
	otherKey = "(other)"
	// maxRecordedBody is the largest request body a Record keeps verbatim.
	maxRecordedBody = 1 << 20
)

// Stats is a snapshot of the API requests received since the server was
// created or last reset. Control routes (/_stats, /_reset, /_faults) are not
// counted. It is the JSON of GET /_stats.
type Stats struct {
	// Total counts every API request, including unknown paths.
	Total int `json:"total"`
	// Models is keyed by the "model" field of the request body; requests
	// without one (GET /v1/models, unparsable bodies) are not in it.
	Models map[string]ModelStats `json:"models"`
	// Paths counts requests by URL path as received.
	Paths map[string]int `json:"paths"`
	// Requests holds the last RecordsKept requests, oldest first.
	Requests []Record `json:"requests"`
}

// ModelStats counts the requests that named one model.
type ModelStats struct {
	// Requests counts every request naming the model, faulted or not.
	Requests int `json:"requests"`
	// Streams counts those that asked for "stream": true.
	Streams int `json:"streams"`
	// Statuses counts finished requests by the HTTP status sent; 0 means no
	// status was sent (hang, reset before the headers, client gone).
	Statuses map[int]int `json:"statuses"`
}

// Record describes one API request. It is written when the request arrives,
// before any fault is applied, and Status is filled in when it finishes.
type Record struct {
	// Time is when the request arrived.
	Time time.Time `json:"time"`
	// Method and Path are those of the request line.
	Method string `json:"method"`
	Path   string `json:"path"`
	// Proto is the protocol it came in: "HTTP/1.1", or "HTTP/2.0" (h2c).
	Proto string `json:"proto"`
	// Model and Stream are read from the body, if it is a JSON object.
	Model  string `json:"model"`
	Stream bool   `json:"stream"`
	// Status is the HTTP status sent, 0 while running or when none was sent.
	Status int `json:"status"`
	// Fault is the fault spec applied, from the header or a rule.
	Fault string `json:"fault,omitempty"`
	// Body is the request body: verbatim when it is JSON of at most 1 MiB,
	// else a JSON string (the text, or a note of its size when larger).
	Body json.RawMessage `json:"body,omitempty"`
	// These are the values of the request headers of the same names.
	Authorization    string `json:"authorization,omitempty"`
	APIKey           string `json:"x_api_key,omitempty"`
	AnthropicVersion string `json:"anthropic_version,omitempty"`
	RequestID        string `json:"x_request_id,omitempty"`
}

// statsState is the live form of Stats; Server.mu guards it.
type statsState struct {
	total   int
	models  map[string]*ModelStats
	paths   map[string]int
	records []Record
	seqs    []int // seqs[i] is the request sequence number of records[i]
}

func (st *statsState) reset() {
	*st = statsState{models: map[string]*ModelStats{}, paths: map[string]int{}}
}

// Stats returns a snapshot of the stats, as GET /_stats does.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Stats{
		Total:    s.stats.total,
		Models:   make(map[string]ModelStats, len(s.stats.models)),
		Paths:    maps.Clone(s.stats.paths),
		Requests: append([]Record(nil), s.stats.records...),
	}
	for name, m := range s.stats.models {
		c := *m
		c.Statuses = maps.Clone(m.Statuses)
		out.Models[name] = c
	}
	return out
}

// recordLocked counts a newly arrived request.
func (st *statsState) recordLocked(seq int, rec Record) {
	st.total++
	st.paths[boundedKey(st.paths, rec.Path)]++
	if m := st.modelLocked(rec.Model); m != nil {
		m.Requests++
		if rec.Stream {
			m.Streams++
		}
	}
	st.records = append(st.records, rec)
	st.seqs = append(st.seqs, seq)
	if n := len(st.records) - RecordsKept; n > 0 {
		st.records = append(st.records[:0], st.records[n:]...)
		st.seqs = append(st.seqs[:0], st.seqs[n:]...)
	}
}

// finishLocked stores the status a request ended with.
func (st *statsState) finishLocked(seq int, model string, status int) {
	if m := st.modelLocked(model); m != nil {
		m.Statuses[status]++
	}
	for i := len(st.seqs) - 1; i >= 0; i-- {
		if st.seqs[i] == seq {
			st.records[i].Status = status
			return
		}
	}
}

// modelLocked returns the counters of model, creating them; nil for "".
func (st *statsState) modelLocked(model string) *ModelStats {
	if model == "" {
		return nil
	}
	if m, ok := st.models[model]; ok {
		return m
	}
	key := boundedKey(st.models, model)
	m, ok := st.models[key]
	if !ok {
		m = &ModelStats{Statuses: map[int]int{}}
		st.models[key] = m
	}
	return m
}

// boundedKey returns key, or otherKey once m holds maxKeys other keys.
func boundedKey[V any](m map[string]V, key string) string {
	if _, ok := m[key]; ok || len(m) < maxKeys {
		return key
	}
	return otherKey
}

// recordedBody returns what a Record keeps of a request body.
func recordedBody(body []byte) json.RawMessage {
	var s string
	switch {
	case len(body) == 0:
		return nil
	case len(body) > maxRecordedBody:
		s = fmt.Sprintf("<%d bytes, not kept>", len(body))
	case json.Valid(body):
		return json.RawMessage(body)
	default:
		s = string(body)
	}
	quoted, err := json.Marshal(s)
	if err != nil {
		return nil // a string always marshals
	}
	return quoted
}

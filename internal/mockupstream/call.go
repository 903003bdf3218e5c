package mockupstream

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// protocol is the wire format a request is answered in.
type protocol int

const (
	protoOpenAI protocol = iota
	protoAnthropic
	// protoByHeader resolves to protoAnthropic when the request carries
	// anthropic-version, else to protoOpenAI (GET /v1/models is shared).
	protoByHeader
)

// maxBody bounds a request body, as the real APIs do (Anthropic: 32 MB).
const maxBody = 32 << 20

// errResponded ends a handler whose response is already out; nothing more is
// written for it.
var errResponded = errors.New("mock upstream: response already sent")

// call is one API request in flight: what was received, and the fault and
// timing that apply to it.
type call struct {
	seq       int
	proto     protocol
	w         *statusWriter
	r         *http.Request
	body      []byte
	readErr   error // why the body could not be read
	model     string
	stream    bool
	fault     fault
	faultErr  error // why the fault spec does not parse
	timing    Options
	requestID string
	created   time.Time
}

// api wraps an API handler: it records the request, checks auth, applies
// the request-level faults, runs handle, and turns an *apiError into an
// error response in the API's format.
func (s *Server) api(proto protocol, handle func(*call) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := s.begin(w, r, proto)
		defer s.finish(c)
		err := c.readErr
		if err == nil {
			err = s.admit(c)
		}
		if err == nil {
			err = handle(c)
		}
		c.fail(err)
	}
}

// begin reads the request, picks its fault and records it in the stats.
func (s *Server) begin(w http.ResponseWriter, r *http.Request, proto protocol) *call {
	if proto == protoByHeader {
		proto = protoOpenAI
		if r.Header.Get("anthropic-version") != "" {
			proto = protoAnthropic
		}
	}
	c := &call{proto: proto, w: &statusWriter{ResponseWriter: w}, r: r, fault: noFault}
	c.body, c.readErr = readBody(w, r)
	var head struct {
		Model  string `json:"model"`
		Stream bool   `json:"stream"`
	}
	_ = json.Unmarshal(c.body, &head) // a bad body is reported by the handler
	c.model, c.stream = head.Model, head.Stream
	headerSpec := strings.TrimSpace(r.Header.Get(FaultHeader))
	if headerSpec != "" {
		c.fault, c.faultErr = parseFault(headerSpec)
	}
	s.mu.Lock()
	s.seq++
	c.seq = s.seq
	if headerSpec == "" {
		if rule := s.matchRuleLocked(c.model); rule != nil {
			c.fault, c.faultErr = rule.fault, rule.err
		}
	}
	s.noteModelLocked(c.model)
	s.stats.recordLocked(c.seq, s.recordOf(c))
	s.mu.Unlock()
	c.timing = c.fault.timing(s.opts)
	c.requestID = "req_mock_" + strconv.Itoa(c.seq)
	c.created = s.now()
	if proto == protoAnthropic {
		w.Header().Set("request-id", c.requestID)
	} else {
		w.Header().Set("x-request-id", c.requestID)
	}
	return c
}

// recordOf describes c for the stats.
func (s *Server) recordOf(c *call) Record {
	h := c.r.Header
	return Record{
		Time:             s.now(),
		Method:           c.r.Method,
		Path:             c.r.URL.Path,
		Proto:            c.r.Proto,
		Model:            c.model,
		Stream:           c.stream,
		Fault:            c.fault.spec,
		Body:             recordedBody(c.body),
		Authorization:    h.Get("Authorization"),
		APIKey:           h.Get("x-api-key"),
		AnthropicVersion: h.Get("anthropic-version"),
		RequestID:        h.Get("X-Request-Id"),
	}
}

// noteModelLocked remembers model for GET /v1/models.
func (s *Server) noteModelLocked(model string) {
	if model != "" && (s.seen[model] || len(s.seen) < maxKeys) {
		s.seen[model] = true
	}
}

// finish stores the status c ended with. It runs even when the handler
// aborts the connection with a panic.
func (s *Server) finish(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.finishLocked(c.seq, c.model, c.w.status)
}

// admit checks what every API request must satisfy and applies the faults
// that replace the whole response. It returns nil when the handler should run.
func (s *Server) admit(c *call) error {
	if err := s.authorize(c); err != nil {
		return err
	}
	if c.proto == protoAnthropic && c.r.Header.Get("anthropic-version") == "" {
		return errorf(http.StatusBadRequest, "anthropic-version: header is required")
	}
	if c.faultErr != nil {
		return errorf(http.StatusBadRequest, "mock upstream: bad fault spec %q: %v", c.fault.spec, c.faultErr)
	}
	if err := sleep(c.r.Context(), c.timing.Latency); err != nil {
		return err
	}
	f := c.fault
	switch {
	case f.hang:
		return hang(c)
	case f.status != 0:
		return injectedStatus(f)
	case f.resetAfter >= 0 && !c.stream:
		panic(http.ErrAbortHandler)
	case f.malformed && !c.stream:
		c.w.Header().Set("Content-Type", "application/json")
		c.w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(c.w, `{"id":"mock-malformed","object":"chat.completion","choices":[{"index":0,"message":{"content":"trunc`)
		return errResponded
	}
	return nil
}

// authorize enforces Options.RequireKey in the way of c's API.
func (s *Server) authorize(c *call) error {
	key := s.opts.RequireKey
	switch {
	case key == "":
		return nil
	case c.proto == protoAnthropic && c.r.Header.Get("x-api-key") == key:
		return nil
	case c.proto == protoAnthropic:
		return errorf(http.StatusUnauthorized, "invalid x-api-key")
	case c.r.Header.Get("Authorization") == "Bearer "+key:
		return nil
	}
	return errorf(http.StatusUnauthorized, "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.")
}

// injectedStatus is the error answered for a status=N fault.
func injectedStatus(f fault) *apiError {
	return &apiError{
		status:       f.status,
		message:      fmt.Sprintf("mock upstream: injected status %d", f.status),
		typ:          f.typ,
		code:         f.code,
		retryAfter:   f.retryAfter,
		retryAfterMS: f.retryAfterMS,
	}
}

// hang blocks until the client goes away, or until a server started by
// Listen shuts down, in which case the connection is aborted.
func hang(c *call) error {
	ctx := c.r.Context()
	select {
	case <-ctx.Done():
		return fmt.Errorf("hang ended: %w", ctx.Err())
	case <-stoppingFrom(ctx):
		panic(http.ErrAbortHandler)
	}
}

// fail answers err when it is an *apiError and nothing has been sent yet.
func (c *call) fail(err error) {
	var ae *apiError
	if err == nil || !errors.As(err, &ae) || c.w.status != 0 {
		return
	}
	ae.write(c.w, c.proto, c.requestID)
}

// readBody reads the whole request body, up to maxBody.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err == nil {
		return body, nil
	}
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return nil, errorf(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", maxBody)
	}
	return nil, errorf(http.StatusBadRequest, "could not read the request body: %v", err)
}

// statusWriter remembers the status sent through it.
type statusWriter struct {
	http.ResponseWriter
	status int // 0 until a status is sent
}

// WriteHeader sends code and remembers the first final status.
func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write sends b, implying status 200 when none was sent.
func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter {
	return w.ResponseWriter
}

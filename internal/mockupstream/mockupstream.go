// Package mockupstream is a fake LLM provider for tests, benchmarks and the
// gateway's demo mode.
//
// It speaks the OpenAI chat completions, embeddings and models APIs and the
// Anthropic Messages API closely enough for the official SDKs to parse its
// answers, streamed or not. Answers are a deterministic function of the
// request, so the same request always gets the same text, tool call and usage.
//
// A text answer is "Mock reply to:", the first five words of the last user
// message, then words chosen by a hash of that message (and of the choice
// index), 12 tokens in all (Options.ReplyTokens sets another length); each streamed content event is one token (a word
// with its leading space). max_tokens and stop sequences cut it as a model
// would. The prompt estimate is ceil(characters of all message contents / 4)
// plus 4 per message (the Anthropic system prompt counts as one). When an
// Anthropic request has a cache_control anywhere, the system prompt's
// ceil(characters/4) tokens are reported as cache_read_input_tokens and
// input_tokens is the rest; cache writes are always 0.
//
// With tools, unless tool_choice is "none", the answer is one call to the tool
// tool_choice names, else the first, with arguments built from its JSON
// schema ("mock" for strings, 1 for numbers, true for booleans, first enum
// values). When the conversation ends with tool results, the answer is
// "The tool returned: " and their contents.
//
// Faults are chosen per request, either by the request header X-Mock-Fault or
// by rules added with [Server.AddFault] (or POST /_faults); see [Rule] for the
// spec grammar. What the server received is kept in [Stats] (GET /_stats).
//
// Routes:
//
//	POST /v1/chat/completions   (also /chat/completions)
//	POST /v1/embeddings         (also /embeddings)
//	GET  /v1/models[/{id}]      (also /models; Anthropic format when anthropic-version is sent;
//	                             lists mock-gpt, mock-claude, mock-embedding and every model seen)
//	POST /v1/messages           (also /messages; Anthropic)
//	GET  /_stats, POST /_reset, GET|POST|DELETE /_faults
package mockupstream

import (
	"net/http"
	"sync"
	"time"
)

// Options tune the timing and authentication of a [Server]. The zero value
// answers at once, without auth.
type Options struct {
	// Latency is the delay before the response headers; for a non-stream
	// answer it is therefore the delay before the whole body.
	Latency time.Duration
	// TTFT is, for a stream, the delay between the headers and the first
	// content event.
	TTFT time.Duration
	// TokensPerSecond paces the content events of a stream after the first;
	// 0 sends them as fast as possible.
	TokensPerSecond float64
	// RequireKey, when set, must be presented by every API request
	// (OpenAI: "Authorization: Bearer K"; Anthropic: "x-api-key: K"),
	// else the request gets a 401 in that API's format.
	RequireKey string
	// ReplyTokens is the length of a text answer in tokens (before
	// max_tokens and stop sequences cut it); 0 keeps the default of 12.
	// Benchmarks use it for realistic response sizes.
	ReplyTokens int
}

// Server is the fake provider. It implements [http.Handler]; create it with
// [New]. It is safe for concurrent use and must not be copied.
type Server struct {
	opts Options
	mux  *http.ServeMux
	// now is the clock, replaceable in tests.
	now func() time.Time

	// mu guards everything below. It is never held across I/O or sleeps.
	mu    sync.Mutex
	seq   int             // number of API requests ever received; gives ids
	stats statsState      // what GET /_stats reports
	rules []*liveRule     // fault rules in insertion order
	seen  map[string]bool // models named by requests, for GET /v1/models
}

// New returns a Server with the given options.
func New(opts Options) *Server {
	s := &Server{opts: opts, now: time.Now, seen: map[string]bool{}}
	s.stats.reset()
	s.mux = s.routes()
	return s
}

// ServeHTTP serves the API and control routes listed in the package doc.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// Reset clears the stats, the models seen and the fault rules.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.reset()
	s.rules = nil
	s.seen = map[string]bool{}
}

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	for _, prefix := range []string{"/v1", ""} {
		mux.HandleFunc("POST "+prefix+"/chat/completions", s.api(protoOpenAI, s.chatCompletions))
		mux.HandleFunc("POST "+prefix+"/embeddings", s.api(protoOpenAI, s.embeddings))
		mux.HandleFunc("GET "+prefix+"/models", s.api(protoByHeader, s.listModels))
		mux.HandleFunc("GET "+prefix+"/models/{id...}", s.api(protoByHeader, s.getModel))
		mux.HandleFunc("POST "+prefix+"/messages", s.api(protoAnthropic, s.messages))
	}
	mux.HandleFunc("GET /_stats", s.handleStats)
	mux.HandleFunc("POST /_reset", s.handleReset)
	mux.HandleFunc("GET /_faults", s.handleListFaults)
	mux.HandleFunc("POST /_faults", s.handleAddFault)
	mux.HandleFunc("DELETE /_faults", s.handleClearFaults)
	mux.HandleFunc("/", s.api(protoByHeader, s.notFound))
	return mux
}

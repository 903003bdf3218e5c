package gateway_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tollgate-gw/tollgate/internal/admin"
	"github.com/tollgate-gw/tollgate/internal/gateway"
)

// Each bad input gets its exact status and stable code, and the next good
// request still succeeds.
func TestBadInput(t *testing.T) {
	s := startStack(t)
	big := `{"model":"m1","messages":[{"role":"user","content":"` + strings.Repeat("x", 70000) + `"}]}`
	cases := []struct {
		name, method, path, body string
		hdr                      []string
		status                   int
		code                     string
	}{
		{"malformed JSON", "POST", "/v1/chat/completions", `{"model":"m1",`, nil, 400, "invalid_json"},
		{"trailing garbage", "POST", "/v1/chat/completions", `{"model":"m1","messages":[{"role":"user","content":"x"}]} x`, nil, 400, "invalid_json"},
		{"not an object", "POST", "/v1/chat/completions", `[1,2]`, nil, 400, "invalid_type"},
		{"model wrong type", "POST", "/v1/chat/completions", `{"model":5,"messages":[]}`, nil, 400, "invalid_type"},
		{"messages wrong type", "POST", "/v1/chat/completions", `{"model":"m1","messages":"hi"}`, nil, 400, "invalid_type"},
		{"stream wrong type", "POST", "/v1/chat/completions", `{"model":"m1","stream":"yes","messages":[{"role":"user","content":"x"}]}`, nil, 400, "invalid_type"},
		{"missing model", "POST", "/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}]}`, nil, 400, "missing_required_parameter"},
		{"missing messages", "POST", "/v1/chat/completions", `{"model":"m1"}`, nil, 400, "missing_required_parameter"},
		{"bad role", "POST", "/v1/chat/completions", `{"model":"m1","messages":[{"role":"wizard","content":"x"}]}`, nil, 400, "invalid_value"},
		{"unknown model", "POST", "/v1/chat/completions", `{"model":"gpt-9","messages":[{"role":"user","content":"x"}]}`, nil, 404, "model_not_found"},
		{"unknown tier", "POST", "/v1/chat/completions", hi, []string{"X-Tollgate-Tier", "platinum"}, 400, "invalid_tier"},
		{"body too large", "POST", "/v1/chat/completions", big, nil, 413, "request_too_large"},
		{"embeddings missing input", "POST", "/v1/embeddings", `{"model":"emb"}`, nil, 400, "missing_required_parameter"},
		{"wrong method", "GET", "/v1/chat/completions", "", nil, 405, "method_not_allowed"},
		{"unknown path", "POST", "/v1/completions2", hi, nil, 404, "unknown_endpoint"},
		{"unknown model get", "GET", "/v1/models/nope", "", nil, 404, "model_not_found"},
		{"no key", "POST", "/v1/chat/completions", hi, []string{"Authorization", ""}, 401, "missing_api_key"},
		{"wrong key", "POST", "/v1/chat/completions", hi, []string{"Authorization", "Bearer nope"}, 401, "invalid_api_key"},
		{"headers too large", "POST", "/v1/chat/completions", hi, []string{"X-Padding", strings.Repeat("p", 20000)}, 431, "headers_too_large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, hdr, body := s.do(t, tc.method, tc.path, tc.body, tc.hdr...)
			_, c := errorBody(t, body)
			if code != tc.status || c != tc.code {
				t.Errorf("got %d %q, want %d %q: %s", code, c, tc.status, tc.code, body)
			}
			if ct := hdr.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if code, _, body := s.post(t, "/v1/chat/completions", hi); code != http.StatusOK {
				t.Errorf("good request after bad input: %d %s", code, body)
			}
		})
	}
	if n := s.mock.Stats().Total; n != len(cases) {
		t.Errorf("upstream saw %d requests, want only the %d good ones", n, len(cases))
	}
}

func TestHealthAndReady(t *testing.T) {
	s := startStack(t)
	for _, p := range []string{"/healthz", "/readyz"} {
		code, _, body := s.do(t, "GET", p, "", "Authorization", "")
		if code != 200 {
			t.Errorf("%s = %d %s", p, code, body)
		}
	}
}

// panicky is an admin API that panics: a bug anywhere in a request must
// cost that request a 500, never the gateway.
type panicky struct{}

func (panicky) ServeAdmin(http.ResponseWriter, *http.Request, admin.Actor) error { panic("boom") }

func TestPanicIsA500(t *testing.T) {
	s := startStackWith(t, testConfig, func(o *gateway.Options) { o.Admin = panicky{}; o.ServeMetrics = true })
	code, _, body := s.do(t, "GET", "/admin/teams", "")
	if code != http.StatusInternalServerError || !strings.Contains(string(body), "internal_error") {
		t.Errorf("panic answered %d %s, want 500 internal_error", code, body)
	}
	if code, _, body := s.post(t, "/v1/chat/completions", hi); code != http.StatusOK {
		t.Errorf("request after the panic: %d %s", code, body)
	}
	if !strings.Contains(string(s.logs.Bytes()), `"event":"panic"`) {
		t.Error("the panic was not logged")
	}
	sc := scrapeMetrics(t, s)
	if sc["tollgate_in_flight_requests"] == nil {
		t.Fatal("no tollgate_in_flight_requests gauge")
	}
	if got := sc.sum("tollgate_in_flight_requests", nil); got != 0 {
		t.Errorf("in-flight gauge after the panic = %v, want 0", got)
	}
}

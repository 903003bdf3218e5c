package mockupstream_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-gw/tollgate/internal/mockupstream"
)

// Stats count requests per model, stream and status, per path, and keep the
// bodies and headers of the last requests; GET /_stats shows the same.
func TestStats(t *testing.T) {
	m, ts := start(t, mockupstream.Options{})
	post(t, ts, "/v1/chat/completions", chatBody("m1", "one", ""), "Authorization", "Bearer k1", "X-Request-Id", "rid-1")
	post(t, ts, "/chat/completions", chatBody("m1", "two", `"stream":true`))
	post(t, ts, "/v1/chat/completions", chatBody("m1", "three", ""), mockupstream.FaultHeader, "status=503")
	post(t, ts, "/v1/messages", messagesBody("c1", "four", ""), "anthropic-version", "2023-06-01", "x-api-key", "ak")
	post(t, ts, "/v1/embeddings", `not json`)
	resp, err := ts.Client().Get(ts.URL + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	st := m.Stats()
	wantModels := map[string]mockupstream.ModelStats{
		"m1": {Requests: 3, Streams: 1, Statuses: map[int]int{200: 2, 503: 1}},
		"c1": {Requests: 1, Statuses: map[int]int{200: 1}},
	}
	if d := cmp.Diff(st.Models, wantModels); d != "" {
		t.Errorf("models (-got +want):\n%s", d)
	}
	wantPaths := map[string]int{"/v1/chat/completions": 2, "/chat/completions": 1, "/v1/messages": 1, "/v1/embeddings": 1, "/v1/models": 1}
	if d := cmp.Diff(st.Paths, wantPaths); d != "" {
		t.Errorf("paths (-got +want):\n%s", d)
	}
	if st.Total != 6 || len(st.Requests) != 6 {
		t.Fatalf("total %d, %d records; want 6", st.Total, len(st.Requests))
	}
	first, faulted, ant, bad := st.Requests[0], st.Requests[2], st.Requests[3], st.Requests[4]
	if first.Authorization != "Bearer k1" || first.RequestID != "rid-1" || first.Status != 200 || first.Method != "POST" {
		t.Errorf("first record %+v", first)
	}
	var body struct {
		Messages []struct {
			Content string `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(faulted.Body, &body); err != nil || body.Messages[0].Content != "three" {
		t.Errorf("third body %s: %v", faulted.Body, err)
	}
	if faulted.Fault != "status=503" || faulted.Status != 503 {
		t.Errorf("faulted record fault %q status %d", faulted.Fault, faulted.Status)
	}
	if ant.APIKey != "ak" || ant.AnthropicVersion != "2023-06-01" || ant.Model != "c1" {
		t.Errorf("anthropic record %+v", ant)
	}
	if string(bad.Body) != `"not json"` || bad.Status != 400 {
		t.Errorf("a body that is not JSON is kept as %s (status %d), want a JSON string", bad.Body, bad.Status)
	}

	var viaHTTP mockupstream.Stats
	getJSON(t, ts.URL+"/_stats", &viaHTTP)
	if d := cmp.Diff(viaHTTP, m.Stats()); d != "" {
		t.Errorf("GET /_stats differs from Stats() (-http +go):\n%s", d)
	}
}

// The record ring keeps the last RecordsKept requests; /_reset clears all.
func TestStatsBoundedAndReset(t *testing.T) {
	m, ts := start(t, mockupstream.Options{})
	m.AddFault(mockupstream.Rule{Model: "nobody", Fault: "hang"})
	for i := range mockupstream.RecordsKept + 6 {
		model := "m1"
		if i == mockupstream.RecordsKept+5 {
			model = "last"
		}
		post(t, ts, "/v1/embeddings", `{"model":"`+model+`","input":"x"}`)
	}
	st := m.Stats()
	if st.Total != mockupstream.RecordsKept+6 || len(st.Requests) != mockupstream.RecordsKept || st.Requests[len(st.Requests)-1].Model != "last" {
		t.Errorf("total %d, %d records, last %q", st.Total, len(st.Requests), st.Requests[len(st.Requests)-1].Model)
	}
	if code, _, _ := post(t, ts, "/_reset", ""); code != http.StatusNoContent {
		t.Errorf("POST /_reset: %d", code)
	}
	st = m.Stats()
	if st.Total != 0 || len(st.Requests) != 0 || len(st.Models) != 0 || len(m.Faults()) != 0 {
		t.Errorf("after reset: %+v, rules %v", st, m.Faults())
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

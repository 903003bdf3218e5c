package gateway_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tollgate-gw/tollgate/internal/mockupstream"
	"github.com/tollgate-gw/tollgate/internal/tenant"
)

// BenchmarkChatNonStream measures a whole request over loopback HTTP: client
// → gateway → mock upstream and back. Compare with BenchmarkMockDirect for
// the gateway's share.
func BenchmarkChatNonStream(b *testing.B) {
	s := startStack(b)
	s.logs.discard = true
	benchPost(b, s.url+"/chat/completions", hi)
}

func BenchmarkChatStream(b *testing.B) {
	s := startStack(b)
	s.logs.discard = true
	benchPost(b, s.url+"/chat/completions", `{"model":"chat","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
}

func benchPost(b *testing.B, url, body string) { benchPostKey(b, url, body, masterKey) }

// BenchmarkMockDirect is the same request sent straight to the mock upstream:
// the difference from BenchmarkChatNonStream is the gateway's cost.
func BenchmarkMockDirect(b *testing.B) {
	mock := httptest.NewServer(mockupstream.New(mockupstream.Options{}))
	b.Cleanup(mock.Close)
	benchPost(b, mock.URL+"/v1/chat/completions", `{"model":"m1","messages":[{"role":"user","content":"hi"}]}`)
}

// BenchmarkChatTenant is BenchmarkChatNonStream with a team's virtual key:
// authentication, a rate limit, a budget reservation and a ledger record
// written to SQLite on every request.
func BenchmarkChatTenant(b *testing.B) {
	ts := startTenantStack(b)
	team := ts.team(b, &tenant.Team{Name: "bench", Limits: tenant.Limits{RPM: 1 << 30, TPM: 1 << 30},
		Budget: &tenant.Budget{Limit: 1 << 60, Period: tenant.PeriodMonthly}})
	key := ts.key(b, &tenant.Key{TeamID: team.ID, Name: "k"})
	benchPostKey(b, ts.url+"/chat/completions", `{"model":"auto","max_tokens":50,"messages":[{"role":"user","content":"hi"}]}`, key)
}

func benchPostKey(b *testing.B, url, body, key string) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

package gateway_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
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

func benchPost(b *testing.B, url, body string) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+masterKey)
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

package mockupstream_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/tollgate-gw/tollgate/internal/mockupstream"
)

// Listen serves on a free loopback port; shutdown releases a hung request
// (its client sees an error) instead of waiting for it.
func TestListenAndShutdown(t *testing.T) {
	m := mockupstream.New(mockupstream.Options{})
	root, shutdown, err := m.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(root, "http://127.0.0.1:") || strings.HasSuffix(root, ":0") {
		t.Fatalf("root URL %q", root)
	}
	c := openai.NewClient(option.WithBaseURL(root+"/v1"), option.WithAPIKey("k"), option.WithMaxRetries(0))
	if _, err := c.Chat.Completions.New(testCtx(t), userParams("m1", "hi")); err != nil {
		t.Fatal(err)
	}

	hung := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(testCtx(t), http.MethodPost, root+"/v1/chat/completions", strings.NewReader(chatBody("m1", "hi", "")))
		req.Header.Set(mockupstream.FaultHeader, "hang")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		hung <- err
	}()
	waitFor(t, "the hang to arrive", func() bool { return m.Stats().Total == 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	began := time.Now()
	if err := shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if d := time.Since(began); d > time.Second {
		t.Errorf("shutdown took %v with a hung request", d)
	}
	if err := <-hung; err == nil {
		t.Error("the hung request got an answer at shutdown")
	}
	if err := shutdown(ctx); err != nil {
		t.Errorf("second shutdown: %v", err)
	}
}

// The package-level Listen is what the gateway's demo mode uses.
func TestPackageListen(t *testing.T) {
	root, shutdown, err := mockupstream.Listen("127.0.0.1:0", mockupstream.Options{RequireKey: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(context.Background())
	c := openai.NewClient(option.WithBaseURL(root+"/v1"), option.WithAPIKey("demo"), option.WithMaxRetries(0))
	got, err := c.Chat.Completions.New(testCtx(t), userParams("m1", "hi"))
	if err != nil || got.Choices[0].Message.Content == "" {
		t.Fatalf("answer %+v, %v", got, err)
	}
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

func TestHelpOnEveryCommand(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"serve", "--help"}, {"config", "validate", "--help"}, {"mock-upstream", "--help"}, {"explain", "--help"}, {"simulate", "--help"}, {"teams", "--help"}, {"keys", "--help"}, {"usage", "--help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := Main(context.Background(), args, &out, &errOut)
			if !errors.Is(err, flag.ErrHelp) {
				t.Errorf("Main(%v) = %v, want flag.ErrHelp", args, err)
			}
			if !strings.Contains(out.String()+errOut.String(), "Usage") && !strings.Contains(out.String()+errOut.String(), "usage") {
				t.Errorf("no usage text printed: %q %q", out.String(), errOut.String())
			}
		})
	}
}

func TestUnknownCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := Main(context.Background(), []string{"frobnicate"}, &out, &errOut); err == nil {
		t.Error("unknown command succeeded")
	}
	if err := Main(context.Background(), []string{"serve"}, &out, &errOut); err == nil {
		t.Error("serve without --config or --demo succeeded")
	}
}

// startMain runs Main in the background and returns the first stdout line
// that contains want, and a function that stops it and returns Main's error.
func startMain(t *testing.T, args []string, want string) (line string, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := Main(ctx, args, pw, io.Discard)
		pw.CloseWithError(err)
		done <- err
	}()
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), want) {
				found <- sc.Text()
				break
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case line = <-found:
	case err := <-done:
		cancel()
		t.Fatalf("Main(%v) ended early: %v", args, err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatalf("Main(%v) printed no %q", args, want)
	}
	return line, func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(35 * time.Second):
			return errors.New("Main did not stop")
		}
	}
}

// The README's run command: serve --demo on the built-in mock, driven by openai-go.
func TestServeDemo(t *testing.T) {
	for _, k := range []string{"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "DEEPSEEK_API_KEY"} {
		t.Setenv(k, "")
	}
	t.Setenv("TOLLGATE_MASTER_KEY", "tg-demo-test")
	t.Chdir(t.TempDir()) // the demo keeps its store in the working directory
	line, stop := startMain(t, []string{"serve", "--demo", "--listen", "127.0.0.1:0"}, "base URL:")
	base := strings.TrimSpace(strings.TrimPrefix(line, "base URL:"))
	c := openai.NewClient(option.WithBaseURL(base), option.WithAPIKey("tg-demo-test"), option.WithMaxRetries(0))
	for _, tier := range []string{"budget", "standard", "premium"} {
		var resp *http.Response
		got, err := c.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{Model: "chat",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello")}},
			option.WithHeader("X-Tollgate-Tier", tier), option.WithResponseInto(&resp))
		if err != nil {
			t.Fatalf("tier %s: %v", tier, err)
		}
		if got.Choices[0].Message.Content == "" || resp.Header.Get("X-Tollgate-Model") != "demo-"+tier {
			t.Errorf("tier %s: served by %q, content %q", tier, resp.Header.Get("X-Tollgate-Model"), got.Choices[0].Message.Content)
		}
	}
	if err := stop(); err != nil {
		t.Errorf("Main after cancel = %v, want nil", err)
	}
}

func TestMockUpstreamCommand(t *testing.T) {
	line, stop := startMain(t, []string{"mock-upstream", "--listen", "127.0.0.1:0"}, "listening on")
	url := line[strings.Index(line, "http://"):]
	c := openai.NewClient(option.WithBaseURL(url+"/v1"), option.WithAPIKey("x"), option.WithMaxRetries(0))
	got, err := c.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{Model: "any",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello")}})
	if err != nil || got.Choices[0].Message.Content == "" {
		t.Fatalf("mock-upstream answer %+v, %v", got, err)
	}
	if err := stop(); err != nil {
		t.Errorf("Main after cancel = %v", err)
	}
}

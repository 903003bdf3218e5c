package main

import (
	"io"
	"strings"
	"testing"
)

// --reply-tokens reaches the mock's options; a negative one is refused.
func TestMockUpstreamReplyTokensFlag(t *testing.T) {
	f, err := parseMockUpstream([]string{"--reply-tokens", "150", "--tps", "10"}, io.Discard)
	if err != nil || f.opts.ReplyTokens != 150 || f.opts.TokensPerSecond != 10 {
		t.Fatalf("parse = %+v, %v", f.opts, err)
	}
	if _, err := parseMockUpstream([]string{"--reply-tokens", "-1"}, io.Discard); err == nil || !strings.Contains(err.Error(), "--reply-tokens") {
		t.Errorf("negative --reply-tokens: err = %v", err)
	}
}

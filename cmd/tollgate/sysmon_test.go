package main

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tollgate-gw/tollgate/internal/mockupstream"
)

func TestSysmonEnv(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want string // GODEBUG after; "" when left alone
	}{
		{[]string{"PATH=/bin"}, sysmonSetting},
		{[]string{"GODEBUG=http2client=0", "PATH=/bin"}, "http2client=0," + sysmonSetting},
		{[]string{"GODEBUG="}, sysmonSetting},
		{[]string{"GODEBUG=schedtrace=0"}, ""},
		{[]string{"GODEBUG=gctrace=1,schedtrace=1000"}, ""},
	} {
		got, ok := sysmonEnv(c.in)
		if c.want == "" {
			if ok {
				t.Errorf("%q: changed to %q, want it left alone", c.in, got)
			}
			continue
		}
		if !ok || !slices.Contains(got, "GODEBUG="+c.want) || slices.Contains(got, "PATH=/bin") != slices.Contains(c.in, "PATH=/bin") ||
			len(slices.DeleteFunc(slices.Clone(got), func(kv string) bool { return strings.HasPrefix(kv, "GODEBUG=") })) != len(got)-1 {
			t.Errorf("%q: got %q (%v), want one GODEBUG=%s and every other variable kept", c.in, got, ok, c.want)
		}
	}
}

// `tollgate serve` runs as the same process with the setting in its
// environment, and an operator's own schedtrace wins.
func TestServeKeepsSysmonAwake(t *testing.T) {
	mock, stop, err := mockupstream.New(mockupstream.Options{}).Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stop(context.Background())
	for _, c := range []struct{ godebug, want string }{
		{"", "GODEBUG=" + sysmonSetting},
		{"schedtrace=0", "GODEBUG=schedtrace=0"},
	} {
		t.Setenv("GODEBUG", c.godebug)
		cfg := t.TempDir() + "/tollgate.yaml"
		writeConfig(t, cfg, mock, "one")
		cmd, base := gatewayProcess(t, "--config", cfg)
		if got := servedBy(t, base); got != "one" {
			t.Fatalf("served by %q", got)
		}
		env, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/environ")
		if err != nil {
			t.Fatal(err)
		}
		if vars := bytes.Split(env, []byte{0}); !slices.ContainsFunc(vars, func(v []byte) bool { return string(v) == c.want }) {
			t.Errorf("GODEBUG=%q before start: the serving process (pid %d) has no %s in its environment", c.godebug, cmd.Process.Pid, c.want)
		}
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/route"
)

type explainFlags struct {
	config, profile, model, tier, criticality, request, url string
	json                                                    bool
}

func parseExplain(args []string, stderr io.Writer) (explainFlags, error) {
	var f explainFlags
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.config, "config", os.Getenv("TOLLGATE_CONFIG"), "configuration `FILE` to explain offline (env TOLLGATE_CONFIG)")
	fs.StringVar(&f.url, "url", "", "ask a running gateway instead (its live breaker state), e.g. http://127.0.0.1:8080; needs TOLLGATE_MASTER_KEY")
	fs.StringVar(&f.profile, "profile", os.Getenv("TOLLGATE_PROFILE"), "profile (offline only; default: the file's default_profile)")
	fs.StringVar(&f.model, "model", "", "the model name a client sends (required)")
	fs.StringVar(&f.tier, "tier", "", "the X-Tollgate-Tier a client sends")
	fs.StringVar(&f.criticality, "criticality", "", "the X-Tollgate-Criticality a client sends: critical, standard or background")
	fs.StringVar(&f.request, "request", "", "a chat request body `FILE` (JSON) to count tokens and cost of")
	fs.BoolVar(&f.json, "json", false, "print JSON (the same as POST /admin/explain)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage:\n  tollgate explain --config FILE [--profile P] --model M [--tier T] [--criticality C] [--request body.json] [--json]\n"+
			"  tollgate explain --url URL --model M [...]\n\n"+
			"Shows how a request would be routed: tier, the candidate chain with each deployment's weight and breaker state,\n"+
			"the token estimate against each context window, the maximum cost, and the retry and timeout settings.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if f.model == "" {
		return f, errors.New("explain: --model is required")
	}
	if (f.config == "") == (f.url == "") {
		return f, errors.New("explain: give exactly one of --config FILE and --url URL")
	}
	return f, nil
}

func runExplain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseExplain(args, stderr)
	if err != nil {
		return err
	}
	req := route.ExplainRequest{Model: f.model, Tier: f.tier, Criticality: f.criticality}
	if f.request != "" {
		if req.Body, err = os.ReadFile(f.request); err != nil {
			return err
		}
	}
	var ex route.Explanation
	if f.url != "" {
		ex, err = explainRemote(ctx, f.url, req)
	} else {
		ex, err = explainOffline(f, req, stderr)
	}
	if err != nil {
		return err
	}
	if f.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(ex)
	}
	printExplanation(stdout, ex)
	return nil
}

func explainOffline(f explainFlags, req route.ExplainRequest, stderr io.Writer) (route.Explanation, error) {
	cfg, problems, err := config.Load(f.config, os.LookupEnv)
	for _, p := range problems {
		if p.Severity == config.Error {
			fmt.Fprintln(stderr, p)
		}
	}
	if err != nil {
		return route.Explanation{}, err
	}
	name := f.profile
	if name == "" {
		name = cfg.DefaultProfile
	}
	prof, ok := cfg.Profile(name)
	if !ok {
		return route.Explanation{}, fmt.Errorf("profile %q does not exist; use dev, staging or production", name)
	}
	return route.Explain(cfg, prof, req, nil)
}

func explainRemote(ctx context.Context, url string, req route.ExplainRequest) (route.Explanation, error) {
	var ex route.Explanation
	body := map[string]any{"model": req.Model, "tier": req.Tier, "criticality": req.Criticality}
	if len(req.Body) > 0 {
		body["request"] = json.RawMessage(req.Body)
	}
	b, _ := json.Marshal(body)
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(url, "/")+"/admin/explain", bytes.NewReader(b))
	if err != nil {
		return ex, err
	}
	hreq.Header.Set("Authorization", "Bearer "+os.Getenv("TOLLGATE_MASTER_KEY"))
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		return ex, err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode != http.StatusOK {
		return ex, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(out)))
	}
	return ex, json.Unmarshal(out, &ex)
}

func printExplanation(w io.Writer, ex route.Explanation) {
	fmt.Fprintf(w, "model %q → tier %s (from %s", ex.Model, ex.Tier, ex.TierFrom)
	if ex.Criticality != "" {
		fmt.Fprintf(w, " %q", ex.Criticality)
	}
	fmt.Fprintf(w, "), profile %s\n\n", ex.Profile)
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	for _, c := range ex.Candidates {
		role := "fallback"
		if c.Position == 0 {
			role = "primary"
		}
		fmt.Fprintf(tw, "%d. %s (%s, %s balancing)\n", c.Position+1, c.Model, role, c.Balancing)
		for _, d := range c.Deployments {
			fmt.Fprintf(tw, "   deployment %s\tprovider %s\tupstream %s\tweight %d\tbreaker %s\n", d.ID, d.Provider, d.Upstream, d.Weight, d.Breaker)
		}
		fit := "fits"
		if !c.Fits {
			fit = "DOES NOT FIT → " + c.ContextPolicy
		}
		window := "unknown (not checked)"
		if c.ContextWindow > 0 {
			window = fmt.Sprint(c.ContextWindow)
		}
		fmt.Fprintf(tw, "   context\t%d prompt tokens (%s) + %d max output vs window %s: %s (policy %s)\n",
			c.PromptTokens, c.Tokenizer, c.MaxOutput, window, fit, c.ContextPolicy)
		fmt.Fprintf(tw, "   max cost\t$%.6f (prices from %s)\n", c.MaxCostUSD, c.PriceSource)
		fmt.Fprintf(tw, "   timeouts\tconnect %s, first byte %s, idle %s, total %s; hold-back %s\n",
			c.Timeouts.Connect, c.Timeouts.FirstByte, c.Timeouts.Idle, c.Timeouts.Total, c.HoldBack)
	}
	tw.Flush()
	r := ex.Retry
	fmt.Fprintf(w, "\nretries: up to %d per model, %s, Retry-After honoured up to %s, retry budget %.0f%% of requests\n",
		r.MaxRetries, r.Backoff, r.RetryAfterCap, r.RetryBudget*100)
	fmt.Fprintf(w, "retried: %s\nnever retried: %s\n", r.Retried, r.NeverRetried)
}

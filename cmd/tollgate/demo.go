package main

import (
	"fmt"
	"io"
)

// demoConfig returns the built-in demo configuration and what it runs on: a
// real provider when its key is in the environment, else the in-process mock.
func demoConfig(lookup func(string) (string, bool)) (yaml, what string) {
	switch {
	case has(lookup, "OPENAI_API_KEY"):
		return demoOpenAI, "OpenAI (OPENAI_API_KEY)"
	case has(lookup, "ANTHROPIC_API_KEY"):
		return demoAnthropic, "Anthropic (ANTHROPIC_API_KEY)"
	case has(lookup, "DEEPSEEK_API_KEY"):
		return demoDeepSeek, "DeepSeek (DEEPSEEK_API_KEY)"
	}
	return demoMock, "the built-in mock provider (set OPENAI_API_KEY, ANTHROPIC_API_KEY or DEEPSEEK_API_KEY for a real one)"
}

func has(lookup func(string) (string, bool), k string) bool {
	v, ok := lookup(k)
	return ok && v != ""
}

func printDemo(w io.Writer, base, key, what string) {
	fmt.Fprintf(w, `demo upstream: %s
base URL:      %s
API key:       %s

Try it:
  curl -s %s/chat/completions -H "Authorization: Bearer %s" \
    -H "Content-Type: application/json" -H "X-Tollgate-Tier: premium" \
    -d '{"model":"chat","messages":[{"role":"user","content":"Hello!"}]}'
`, what, base, key, base, key)
}

const demoMock = `
providers:
  mock:
    kind: mock
models:
  demo-budget:
    provider: mock
    upstream: mock-budget
    context_window: 64000
    max_output_tokens: 8192
    price: {input: 0.28, output: 0.42}
  demo-standard:
    provider: mock
    upstream: mock-standard
    context_window: 128000
    max_output_tokens: 16384
    price: {input: 0.15, output: 0.60}
  demo-premium:
    provider: mock
    upstream: mock-premium
    context_window: 128000
    max_output_tokens: 16384
    price: {input: 2.50, output: 10.00}
  demo-embedding:
    provider: mock
    upstream: mock-embedding
    type: embedding
    context_window: 8191
    price: {input: 0.02, output: 0}
tiers:
  budget: [demo-budget, demo-standard]
  standard: [demo-standard, demo-budget]
  premium: [demo-premium, demo-standard]
aliases:
  chat:
    budget: [demo-budget, demo-standard]
    standard: [demo-standard, demo-budget]
    premium: [demo-premium, demo-standard]
`

const demoOpenAI = `
providers:
  openai:
    kind: openai
    base_url: https://api.openai.com/v1
    api_key: ${OPENAI_API_KEY}
models:
  gpt-4o-mini: {provider: openai}
  gpt-4.1-mini: {provider: openai}
  gpt-4o: {provider: openai}
  text-embedding-3-small: {provider: openai}
tiers:
  budget: [gpt-4o-mini]
  standard: [gpt-4.1-mini, gpt-4o-mini]
  premium: [gpt-4o, gpt-4.1-mini]
aliases:
  chat:
    budget: [gpt-4o-mini]
    standard: [gpt-4.1-mini, gpt-4o-mini]
    premium: [gpt-4o, gpt-4.1-mini]
`

const demoAnthropic = `
providers:
  anthropic:
    kind: anthropic
    base_url: https://api.anthropic.com
    api_key: ${ANTHROPIC_API_KEY}
models:
  claude-haiku-4-5: {provider: anthropic}
  claude-sonnet-4-5: {provider: anthropic}
  claude-opus-4-5: {provider: anthropic}
tiers:
  budget: [claude-haiku-4-5]
  standard: [claude-sonnet-4-5, claude-haiku-4-5]
  premium: [claude-opus-4-5, claude-sonnet-4-5]
aliases:
  chat:
    budget: [claude-haiku-4-5]
    standard: [claude-sonnet-4-5, claude-haiku-4-5]
    premium: [claude-opus-4-5, claude-sonnet-4-5]
`

const demoDeepSeek = `
providers:
  deepseek:
    kind: openai
    base_url: https://api.deepseek.com
    api_key: ${DEEPSEEK_API_KEY}
    catalog: deepseek
models:
  deepseek-chat: {provider: deepseek}
  deepseek-reasoner: {provider: deepseek}
tiers:
  budget: [deepseek-chat]
  standard: [deepseek-chat]
  premium: [deepseek-reasoner, deepseek-chat]
aliases:
  chat:
    budget: [deepseek-chat]
    standard: [deepseek-chat]
    premium: [deepseek-reasoner, deepseek-chat]
`

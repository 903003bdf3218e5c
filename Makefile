# Tollgate — the two commands that matter: `make run` and `make test`.
GO ?= go
export PATH := $(PATH):/usr/local/go/bin

.PHONY: run test race build vet bench clean

run: ## run the gateway with the built-in demo configuration
	$(GO) run ./cmd/tollgate serve --demo

test: ## run every test, and the concurrency-critical ones again under the race detector
	$(GO) vet ./...
	$(GO) test -count=1 ./...
	CGO_ENABLED=1 $(GO) test -race -count=1 -run 'Budget|Concurren|Reserve|Rate|Writer|Journal|Breaker' ./internal/gateway ./internal/limit ./internal/meter ./internal/route

race: ## every test under the race detector (needs cgo and a C compiler)
	CGO_ENABLED=1 $(GO) test -race -count=1 ./...

build: ## build bin/tollgate (no cgo)
	CGO_ENABLED=0 $(GO) build -o bin/tollgate ./cmd/tollgate

bench: ## in-process micro-benchmarks
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin

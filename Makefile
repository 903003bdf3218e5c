# Tollgate — the two commands that matter: `make run` and `make test`.
GO ?= go
export PATH := $(PATH):/usr/local/go/bin

.PHONY: run test race build vet bench bench-smoke bench-micro bench-profile clean

run: ## run the gateway with the built-in demo configuration
	$(GO) run ./cmd/tollgate serve --demo

test: ## run every test, and the concurrency-critical ones again under the race detector
	$(GO) vet ./...
	$(GO) test -count=1 ./...
	CGO_ENABLED=1 $(GO) test -race -count=1 -run 'Budget|Concurren|Reserve|Rate|Writer|Journal|Breaker|Stream|Client|Transport|CallContext|HTTP2|Watchdog|Departures|Settle|LogWriter' ./internal/gateway ./internal/limit ./internal/meter ./internal/route ./internal/provider ./internal/telemetry
	cd bench && $(GO) vet ./... && $(GO) test -count=1 ./...
	$(MAKE) bench-smoke

race: ## every test under the race detector (needs cgo and a C compiler)
	CGO_ENABLED=1 $(GO) test -race -count=1 ./...

build: ## build bin/tollgate (no cgo)
	CGO_ENABLED=0 $(GO) build -o bin/tollgate ./cmd/tollgate

bench-smoke: build ## seconds per target: the micro-benchmarks once each and the side-by-side harness on what is installed, results to a temp dir; fails if anything produced no numbers (CI runs it; it says nothing of speed)
	$(GO) test -run '^$$' -bench . -benchtime 1x ./...
	cd bench && $(GO) build -o bin/benchrun ./cmd/benchrun
	out=$$(mktemp -d) && BENCH_SMOKE=1 bench/bin/benchrun -root . -out $$out > $$out/log.txt 2>&1; \
		status=$$?; tail -n 3 $$out/log.txt; [ $$status = 0 ] || cat $$out/log.txt; rm -rf $$out; exit $$status

bench-micro: ## in-process micro-benchmarks (go test -bench -benchmem); compare runs with benchstat
	$(GO) test -run '^$$' -bench . -benchmem ./...

bench: build ## side-by-side benchmark: direct, nginx, tollgate-minimal, tollgate-full, Portkey (bench/README.md; BENCH_QUICK=1 for a short run)
	bash bench/install.sh
	cd bench && $(GO) build -o bin/benchrun ./cmd/benchrun
	bench/bin/benchrun -root .

bench-profile: ## CPU and allocation profiles of the tollgate-full request path (bench/README.md)
	mkdir -p bench/results
	$(GO) test -run '^$$' -bench '^BenchmarkChatTenant$$' -benchmem -benchtime $${BENCH_PROFILE_TIME:-5s} \
		-cpuprofile bench/results/cpu.out -memprofile bench/results/mem.out -o bench/results/gateway.test ./internal/gateway
	$(GO) tool pprof -top -nodecount 25 bench/results/gateway.test bench/results/cpu.out
	$(GO) tool pprof -top -nodecount 25 -sample_index alloc_objects bench/results/gateway.test bench/results/mem.out
	$(GO) tool pprof -top -nodecount 25 -sample_index alloc_space bench/results/gateway.test bench/results/mem.out
	@echo "profiles: bench/results/cpu.out bench/results/mem.out (binary bench/results/gateway.test); browse with: go tool pprof -http 127.0.0.1:8081 bench/results/gateway.test bench/results/cpu.out"

clean:
	rm -rf bin

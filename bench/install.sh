#!/usr/bin/env bash
# Installs the peers of the side-by-side benchmark (bench/README.md):
#   nginx and wrk from Debian (apt-get), Portkey's gateway from npm into
#   bench/.peers/portkey (gitignored).
# Every step may fail without stopping the benchmark: it says why, and the
# target (or scenario) is reported as "unavailable" in the results.
# BENCH_NO_INSTALL=1 skips everything. Run from the repository root.
set -u
cd "$(dirname "$0")/.."

say() { echo "bench/install: $*"; }

if [ "${BENCH_NO_INSTALL:-}" = 1 ]; then
	say "BENCH_NO_INSTALL=1: installing nothing"
	exit 0
fi

# Debian packages: nginx (the reverse-proxy baseline), wrk (closed-loop load),
# and node/npm for Portkey when the machine has no node at all.
missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		say "missing ${missing[*]} and not root: cannot apt-get install (targets using them will be unavailable)"
	elif ! command -v apt-get >/dev/null 2>&1; then
		say "missing ${missing[*]} and no apt-get here (targets using them will be unavailable)"
	else
		say "apt-get install ${missing[*]}"
		if ! timeout 300 apt-get update -qq; then
			say "apt-get update failed; trying the install with the package lists as they are"
		fi
		for pkg in "${missing[@]}"; do # one at a time: one failure does not block the others
			if ! DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq "$pkg" >/dev/null; then
				say "apt-get install $pkg failed (the targets or scenarios that need it will be unavailable)"
			fi
		done
	fi
fi
for tool in nginx wrk node; do
	if command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ]; then
		say "$tool: ok"
	else
		say "$tool: NOT AVAILABLE"
	fi
done

# Portkey: @portkey-ai/gateway, pinned. Its published package has no lock
# file, so npm resolves @hono/node-server to the newest 1.x, and from 1.14
# on Portkey's streaming answers fail with "TypeError: immutable" (Portkey
# issue #1389; still present in 1.15.2 for streams). The override pins the
# last version that works, which is what Portkey was built against.
PORTKEY_VERSION="${BENCH_PORTKEY_VERSION:-1.15.2}"
HONO_NODE_SERVER="${BENCH_PORTKEY_HONO_NODE_SERVER:-1.13.8}"
dir=bench/.peers/portkey
entry="$dir/node_modules/@portkey-ai/gateway/build/start-server.js"
want="{\"name\":\"bench-peer-portkey\",\"private\":true,\"overrides\":{\"@hono/node-server\":\"$HONO_NODE_SERVER\"},\"dependencies\":{\"@portkey-ai/gateway\":\"$PORTKEY_VERSION\"}}"
if ! command -v npm >/dev/null 2>&1; then
	say "portkey: npm not available: the portkey target will be unavailable"
elif [ -f "$entry" ] && [ "$(cat "$dir/package.json" 2>/dev/null)" = "$want" ]; then
	say "portkey: ok ($PORTKEY_VERSION, already installed)"
else
	mkdir -p "$dir"
	echo "$want" >"$dir/package.json"
	say "portkey: npm install @portkey-ai/gateway@$PORTKEY_VERSION (@hono/node-server $HONO_NODE_SERVER) into $dir"
	if (cd "$dir" && timeout 600 npm install --no-audit --no-fund --loglevel=error >/dev/null); then
		say "portkey: ok"
	else
		say "portkey: npm install failed: the portkey target will be unavailable"
	fi
fi
exit 0

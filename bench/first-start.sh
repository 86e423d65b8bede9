#!/bin/bash
# How long a fresh clone's `npm start` takes to serve (README "The two commands"): clones this
# checkout's HEAD into a temporary folder with no ../shared beside it, links this checkout's
# node_modules and copies the native addon build (what `npm ci` would make), then times
# `npm start` until GET /health answers. A fresh clone pretrains the first-start model
# (configs/models/first-start.json); with --with-built the clone gets the built shipped reference
# model (models/shipped/build.ts) too, and its first start installs that instead.
# --keep-model DIR copies the model the first start made (data/models/base) to DIR.
#   bash bench/first-start.sh [--with-built] [--keep-model DIR] [PORT]
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
built=0
keep=""
if [ "$1" = --with-built ]; then built=1; shift; fi
if [ "$1" = --keep-model ]; then keep=$(realpath -m "$2"); shift 2; fi
port=${1:-8899}
tmp=$(mktemp -d /tmp/colloquy-first-start-XXXXXX)
git clone -q "$root" "$tmp/clone"
cd "$tmp/clone"
ln -s "$root/node_modules" node_modules
[ -d "$root/native/build" ] && cp -r "$root/native/build" native/build
# The reproducible reference model is a build output (git-ignored): brought along only when asked.
if [ $built = 1 ]; then
  [ -f "$root/models/shipped/base/model.json" ] || { echo "no built model in $root/models/shipped/base: node bin/run.mjs models/shipped/build.ts"; exit 2; }
  cp "$root"/models/shipped/base/* models/shipped/base/
fi
if curl -s "http://127.0.0.1:$port/health" > /dev/null 2>&1; then echo "port $port is taken: bash bench/first-start.sh PORT"; exit 2; fi
t0=$(date +%s.%N)
# Its own process group, so that npm and the server it starts stop together.
setsid npm start -- --port "$port" > "$tmp/start.log" 2>&1 &
pid=$!
ok=0
for _ in $(seq 1 1500); do
  if curl -sf "http://127.0.0.1:$port/health" > /dev/null 2>&1; then ok=1; break; fi
  if ! kill -0 $pid 2>/dev/null; then break; fi
  sleep 0.2
done
t1=$(date +%s.%N)
kill -TERM -- -$pid 2>/dev/null || true
wait $pid 2>/dev/null || true
if [ $ok = 1 ]; then echo "first start: serving after $(echo "$t1 - $t0" | bc) s (load average $(cut -d' ' -f1-3 /proc/loadavg))"; else echo "first start: not serving; log in $tmp/start.log"; exit 1; fi
grep -o '"msg":"[^"]*"' "$tmp/start.log" | head -4
if [ -n "$keep" ]; then rm -rf "$keep"; mkdir -p "$(dirname "$keep")"; cp -r data/models/base "$keep"; echo "model kept in $keep"; fi
rm -rf "$tmp"

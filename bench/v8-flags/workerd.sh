#!/usr/bin/env bash
# workerd with V8 flags, for wrangler dev: set MINIFLARE_WORKERD_PATH to this file and
# WORKERD_V8_FLAGS to the flags (space-separated). wrangler 4.86's miniflare cannot pass
# Config.v8Flags; patch-config.ts adds them to the config miniflare writes on stdin.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
real="$(cd "$here/../.." && node -p 'require.resolve("workerd/bin/workerd", { paths: [require.resolve("wrangler/package.json")] })')"
config="$(mktemp)"
# shellcheck disable=SC2086
(cd "$here/../.." && node --import tsx bench/v8-flags/patch-config.ts ${WORKERD_V8_FLAGS:-}) > "$config"
# workerd reads the config from stdin ("-"); the file can go once it is open.
exec < "$config"
rm -f "$config"
# Line-buffered stdout: V8 prints its traces with C stdio, which holds a pipe's output in 4 KiB
# blocks, so the last collections of a burst would be read only after later ones.
exec stdbuf -oL "$real" "$@"

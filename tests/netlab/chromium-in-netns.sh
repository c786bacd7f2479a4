#!/bin/sh
# Chromium in the network namespace $MESHDROP_NETNS (tests/e2e/lab.mjs launches it through
# playwright-core as if it were the browser). nsenter changes only the network namespace, so
# the browser keeps the driver's pipes and filesystem.
set -e
[ -n "$MESHDROP_NETNS" ] || { echo "MESHDROP_NETNS is not set" >&2; exit 2; }
exec nsenter --net="/run/netns/$MESHDROP_NETNS" -- "${CHROMIUM:-/usr/bin/chromium}" "$@"

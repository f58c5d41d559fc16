#!/usr/bin/env bash
# Check the HTML report in a real browser (headless Chromium):
#
#     bash scripts/check-html.sh                 # a small experiment, made here
#     bash scripts/check-html.sh REPORT.html     # a report you have
#
# Without an argument it trains 8 tiny models (8 epochs, per-token results
# kept) on the bundled dictionary entries in a temporary directory (about 4
# minutes on 2 cores) and writes `cfmem report --html --membership
# --influence`. The check
# (scripts/html-check/check.mjs) opens the file, checks that the table has
# rows, that sorting and the filter change them, that paging moves on and
# that a document's panel opens with its models' scores drawn (and its
# text coloured per token when the report has per-token results), fails on
# page errors and on any request leaving the file, and saves screenshots as
# docs/src/guide/html-report-*.png (or $SHOTS-*.png). PROBE=ID opens that document
# (default: the most memorized).
#
# Needs Chromium and Node.js: installed from Debian with apt-get when
# missing (as root, or with sudo); puppeteer-core comes from npm into
# scripts/html-check/node_modules (no browser download).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
apt_install() {
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}
command -v chromium >/dev/null || apt_install chromium
command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
if [ ! -d scripts/html-check/node_modules/puppeteer-core ]; then
    (cd scripts/html-check && PUPPETEER_SKIP_DOWNLOAD=1 npm install --silent --no-audit --no-fund)
fi
shots=${SHOTS:-$root/docs/src/guide/html-report}
if [ $# -ge 1 ]; then
    report=$(realpath "$1")
else
    BIN=$(bash scripts/cfmem-bin.sh)
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    "$BIN" run --corpus datasets/devil.jsonl --out "$tmp/devil" --models 8 --epochs 8 --per-token 2>/dev/null >/dev/null
    "$BIN" report "$tmp/devil" --membership --influence --top 0 --html "$tmp/report.html" | tail -n 1
    report=$tmp/report.html
fi
node scripts/html-check/check.mjs "$report" "$shots"

#!/usr/bin/env bash
# Refreshes docs/screenshots: the browser tests (Chromium, headless) save
# every hosted page they check at 1280 px and 390 px as <page>-<width>.png,
# plus the passkey walkthrough's login.png, factor-choice.png, account.png.
# Needs chromium (or STEPUP_TEST_CHROMIUM) on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPUP_SCREENSHOTS="$PWD/docs/screenshots" go test -count=1 -run 'TestBrowser' ./server/
ls -1 docs/screenshots

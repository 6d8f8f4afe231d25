#!/usr/bin/env bash
# Takes the README's screenshots with the real window under Xvfb: a fresh
# server on a spare port, four people talking through the CLI, then the
# desktop app logged in as alice. Needs a release build with the desktop app
# (`cargo build --release -p chatus`) and `apt-get install -y xvfb
# imagemagick xdotool`; with fonts-noto-color-emoji (and a CJK font, e.g.
# fonts-noto-cjk) installed, the pictures show emoji in colour and the
# Chinese and Japanese greeting as text rather than boxes.
# Usage: [SHOT_PORT=N] docs/screenshots/take.sh [OUT_DIR]   (default: docs/screenshots)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-docs/screenshots}
bin=$PWD/target/release/chatus
work=$(mktemp -d)
port=${SHOT_PORT:-7500}   # the default, so the pictures show it; SHOT_PORT to change
display=:97
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

export CHATUS_SERVER=ws://127.0.0.1:$port
"$bin" serve --addr 127.0.0.1:$port --data "$work/data" >"$work/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done

as() { local who=$1; shift; HOME=$work/home-$who "$bin" --user "$who" "$@"; }
for who in alice bob carol dave; do
  mkdir -p "$work/home-$who"
  echo "$who-password" | as "$who" register --password-stdin >/dev/null
done
as alice create dev >/dev/null
as bob join dev >/dev/null
as alice create design --private >/dev/null
as dave send --room lobby "Hi everyone, first day here 👋" >/dev/null
as bob send --room lobby "Welcome dave! The lobby is for everybody; team talk lives in #dev." >/dev/null
as alice send --room lobby "Welcome! Grab a coffee, the setup guide is at https://example.org/chatus/setup" >/dev/null
as carol send --room lobby "Heads up: I'm restarting the staging server at 15:00, your clients will reconnect by themselves." >/dev/null
as carol send --room lobby "Nothing you send in the meantime gets lost: it waits and goes out once." >/dev/null
as bob send --room lobby "Привет, 你好, こんにちは: all three render fine now 🎉" >/dev/null
as alice send --room lobby "$(printf 'Checklist for the release:\n  1. tag v0.1.0\n  2. publish the screenshots\n  3. announce it here')" >/dev/null
as alice send --room lobby "Sounds good, see you at 15:05 then." >/dev/null
as bob send --room dev "the build is green again" >/dev/null
as bob send --room dev "can someone review the fan-out change?" >/dev/null
as bob send --to alice "lunch later?" >/dev/null
# bob and carol stay online, as people do.
HOME=$work/home-bob "$bin" --user bob tail >/dev/null 2>&1 &
pids+=($!)
HOME=$work/home-carol "$bin" --user carol tail >/dev/null 2>&1 &
pids+=($!)

Xvfb $display -screen 0 960x640x24 -nolisten tcp >/dev/null 2>&1 &
pids+=($!)
sleep 1
export DISPLAY=$display

# The login screen, filled in for a new account.
mkdir -p "$work/home-erin"
HOME=$work/home-erin "$bin" gui >/dev/null 2>&1 &
gui=$!
pids+=($gui)
for _ in $(seq 50); do xdotool search --name ChatUs >/dev/null 2>&1 && break; sleep 0.1; done
sleep 1
win=$(xdotool search --name ChatUs | head -1)
xdotool windowfocus --sync "$win"
xdotool mousemove 416 186 click 1   # Register
xdotool mousemove 495 273 click 1 type --delay 20 erin
xdotool mousemove 495 301 click 1 type --delay 20 "erin-password"
sleep 0.5
import -window root "$out/login.png"
kill "$gui"

# A conversation, as alice (logged in already: the app goes straight in).
HOME=$work/home-alice "$bin" gui >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 50); do xdotool search --name "ChatUs —" >/dev/null 2>&1 && break; sleep 0.1; done
# The pointer away from the feed: over a message it shows that message's time.
xdotool mousemove 100 560
sleep 2
import -window root "$out/chat.png"
echo "wrote $out/login.png and $out/chat.png"

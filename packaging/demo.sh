#!/usr/bin/env bash
# `make demo`: the whole system on one machine. Starts a Mosquitto on a free
# loopback port, runs the agent on three real-time paced clips that loop with
# defects injected at known times, shows the alerts with `streamqc events`
# for about 30 s and the fleet live on the dashboard's page (its URL is
# printed: open it in a browser), lists the fleet, then stops everything it
# started. DEMO_SECONDS: how long it runs; DEMO_DASHBOARD_PORT: the page's
# port on 127.0.0.1 (default 8090, else a free one); DEMO_KEEP=1 keeps its
# work directory (the logs of the broker, agent and dashboard).
set -euo pipefail
BIN=${BIN:-bin/streamqc}
CLIPS=${CLIPS:-.cache/clips}
SECONDS_TO_RUN=${DEMO_SECONDS:-30}

STREAMQC_CLIPS=$CLIPS go run ./testdata/gen -out "$CLIPS" -only broadcast_ts,freeze,clipping >/dev/null
clips=$(cd "$CLIPS" && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${DEMO_KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then echo "$p"; return 0; fi
  done
  return 1
}
port=$(free_port) || { echo "no free port" >&2; exit 1; }
dash_port=${DEMO_DASHBOARD_PORT:-8090}
if (exec 3<>/dev/tcp/127.0.0.1/$dash_port) 2>/dev/null; then
  dash_port=$(free_port) || { echo "no free port" >&2; exit 1; }
fi

cat >"$work/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence false
log_dest stderr
CONF
mosquitto=$(command -v mosquitto || echo /usr/sbin/mosquitto)
"$mosquitto" -c "$work/mosquitto.conf" 2>"$work/mosquitto.log" & pids+=($!)
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done

cat >"$work/agent.yaml" <<CONF
fleet: demo
agent: demo-box
state_dir: $work/state
media_dir: $clips
broker:
  url: tcp://127.0.0.1:$port
metrics_interval: 5s
streams:
  # black 3-5 s, silence 7-10 s of every 12 s; black and freeze raised after
  # 0.5 s (not 2 s) so that the dashboard shows their pictures for a while
  - {id: news-hd,   url: broadcast_ts.ts, realtime: true, loop: true, detectors: {black: {min_duration: 0.5}}}
  - {id: sports,    url: freeze.mkv,      realtime: true, loop: true, detectors: {freeze: {min_duration: 0.5}}}   # freeze 4-7 s
  - {id: music,     url: clipping.mkv,    realtime: true, loop: true}   # clipping 4-6 s
CONF
# A live picture of every stream every 2 s for the dashboard's mosaic (off by
# default), where this build has thumbnails.
live="thumbnails: {live_interval: 2s}"
if "$BIN" config check <(cat "$work/agent.yaml"; echo "$live") >/dev/null 2>&1; then echo "$live" >>"$work/agent.yaml"; fi

echo "== mosquitto on 127.0.0.1:$port; agent: fleet demo, agent demo-box, 3 streams"
"$BIN" dashboard --config "$work/agent.yaml" --listen "127.0.0.1:$dash_port" --db "$work/history.db" >"$work/dashboard.log" 2>&1 & pids+=($!)
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$dash_port) 2>/dev/null && break; sleep 0.1; done
echo "== the dashboard: http://127.0.0.1:$dash_port/ (open it in a browser; it runs as long as the demo)"
echo "== streamqc events --follow (for ${SECONDS_TO_RUN} s; the clips loop every 12 s)"
"$BIN" events --config "$work/agent.yaml" --follow & pids+=($!)
events_pid=$!
sleep 0.5
"$BIN" run --config "$work/agent.yaml" 2>"$work/agent.log" & agent_pid=$!
pids+=($agent_pid)
sleep "$SECONDS_TO_RUN"
echo
echo "== streamqc fleet agents"
"$BIN" fleet agents --config "$work/agent.yaml"
echo
echo "== stopping the agent (its open alarms are cleared)"
kill -TERM "$agent_pid"
wait "$agent_pid" || true
sleep 0.5
kill "$events_pid" 2>/dev/null || true
echo
echo "== the agent's last log lines"
tail -n 4 "$work/agent.log"

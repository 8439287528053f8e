#!/usr/bin/env bash
# Description: Prometheus metrics (docs/metrics.md) on a real pair: after writes, `xdpmirror
# metrics` parses with python3-prometheus-client's parser, has every documented family with values
# that match what happened (state connected, disks UpToDate, written bytes, DATA frames each way,
# drops by reason from the XDP map after forged frames, a cumulative write latency histogram);
# GET /metrics from --metrics-listen gives the same families, 404/405 for anything else; a bad
# --metrics-listen value and an address that cannot be bound are refused at attach.
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
require_root
require_cmd nbdcopy curl jq
$PY -c 'import prometheus_client.parser' 2>/dev/null || skip "python3-prometheus-client missing (make deps)"
pair_up met --disk-size 32M
PORT=9464
MB=$((1 << 20))

# parse FILE: its samples as JSON (tests/tools/prom_json.py), or fail.
parse() { $PY "$TOP/tests/tools/prom_json.py" <"$1" >"$1.json" || fail "$1 does not parse: $(head -c 300 "$1")"; }
# value FILE.json NAME LABELS-AS-JQ: one sample's value (null when absent).
value() { jq --arg n "$2" "[.[] | select(.name == \$n and ($3))][0].value" "$1"; }
# at_least FILE.json NAME LABELS MIN
at_least() {
	local v
	v=$(value "$1" "$2" "$3")
	[ "$v" != null ] && jq -e --argjson v "$v" --argjson m "$4" -n '$v >= $m' >/dev/null ||
		fail "$2{$3} in $1: $v, want >= $4"
}
# is FILE.json NAME LABELS WANT: the value is the number WANT.
is() {
	local v
	v=$(value "$1" "$2" "$3")
	[ "$v" != null ] && jq -e --argjson v "$v" --argjson w "$4" -n '$v == $w' >/dev/null ||
		fail "$2{$3} in $1: $v, want $4"
}
families() { jq -r '[.[].family] | unique | .[]' "$1"; }
dev_is() { echo ".labels.device == \"$1\""; }

log "bad --metrics-listen values are refused before anything is made"
# (within 10 s: an attach that wrongly starts fails the test instead of hanging it)
out=$(timeout 10 "$PAIR" netns exec primary --prefix "$XM_TEST_PREFIX" -- "$XM" attach \
	--role primary --dev "$P" --peer "$XM_SECONDARY_MAC" \
	--disk "$XM_PRIMARY_DISK" --meta "$(box_meta primary)" --auth-key "$XM_AUTH_KEY" \
	--metrics-listen localhost:$PORT 2>&1)
assert_eq "$?" 2 "exit code of a name for an address"
grep -q -- "--metrics-listen 'localhost:$PORT': not a TCP port or address" <<<"$out" || fail "said: $out"
# 192.0.2.1 (TEST-NET-1) is no address of the box: bind() says so, and the attach ends cleanly.
out=$(timeout 10 "$PAIR" netns exec primary --prefix "$XM_TEST_PREFIX" -- "$XM" attach \
	--role primary --dev "$P" --peer "$XM_SECONDARY_MAC" \
	--disk "$XM_PRIMARY_DISK" --meta "$(box_meta primary)" --auth-key "$XM_AUTH_KEY" \
	--metrics-listen 192.0.2.1:$PORT 2>&1)
assert_eq "$?" 1 "exit code of an address that cannot be bound"
grep -q -- "attach '$P': --metrics-listen 192.0.2.1:$PORT: Cannot assign requested address" <<<"$out" ||
	fail "said: $out"
log "  $out"
[ ! -e "/sys/fs/bpf/xdpmirror/$P" ] || fail "a refused attach left pins"
[ ! -e "$(box_meta primary)" ] || fail "a refused attach made the metadata file"
xdp_attached primary && fail "a refused attach left the XDP program"

log "a pair serving metrics, after 4 MiB of writes"
mirror_up --metrics-listen 127.0.0.1:$PORT
random_file "$WORK/a.img" $((4 * MB))
nbdcopy --flush "$WORK/a.img" "$(nbd_uri)" || fail "nbdcopy"
# Frames from a stranger and frames with a bad magic: the secondary's XDP program drops them.
in_box primary "$TOOLS/xm_rawsend" --dev "$P" --dst "$XM_SECONDARY_MAC" --src 02:00:00:00:00:99 \
	--count 5 >/dev/null || fail "xm_rawsend bad peer"
in_box primary "$TOOLS/xm_rawsend" --dev "$P" --dst "$XM_SECONDARY_MAC" --src "$XM_PRIMARY_MAC" \
	--magic 0x1234 --count 3 >/dev/null || fail "xm_rawsend bad magic"
dropped() { [ "$(bpf_counter "$S" drop.bad_magic)" -ge 3 ]; }
wait_until 5 dropped || fail "the secondary's XDP program did not drop the bad magic frames"

"$XM" metrics --dev "$P" >"$WORK/p.prom" || fail "metrics --dev $P: exit $?"
"$XM" metrics --dev "$S" >"$WORK/s.prom" || fail "metrics --dev $S: exit $?"
parse "$WORK/p.prom"
parse "$WORK/s.prom"
p=$WORK/p.prom.json s=$WORK/s.prom.json

log "every documented family is there"
for f in up uptime_seconds replication_state sync_state degraded disk_state disk_health_state \
	disk_size_bytes out_of_sync_bytes resync_active resync_done_bytes resync_rate_bytes_per_second \
	resync_bytes peer_reachable rtt_seconds retransmits link_frames link_bytes frames frame_bytes \
	data_payload_bytes xdp_verdicts xdp_drops rx_discards xsk_drops sessions session_ends \
	writes nbd_bytes write_latency_seconds flush_latency_seconds; do
	families "$p" | grep -qx "xdpmirror_$f" || fail "no family xdpmirror_$f in the primary's metrics"
done
# Each family documented, each metric family written is in docs/metrics.md.
for f in $(families "$p") $(families "$s"); do
	grep -q "\`${f}\(_total\)\?\`" "$TOP/docs/metrics.md" || fail "$f is not in docs/metrics.md"
done

log "the values say what happened"
is "$p" xdpmirror_up "$(dev_is "$P") and .labels.role == \"primary\" and .labels.peer == \"$XM_SECONDARY_MAC\"" 1
is "$s" xdpmirror_up "$(dev_is "$S") and .labels.role == \"secondary\"" 1
for f in "$p" "$s"; do
	is "$f" xdpmirror_replication_state '.labels.state == "connected"' 1
	is "$f" xdpmirror_replication_state '.labels.state == "connecting"' 0
	assert_eq "$(jq '[.[] | select(.name == "xdpmirror_replication_state") | .value] | add' "$f")" 1 \
		"replication states at 1 in $f"
	is "$f" xdpmirror_sync_state '.labels.state == "in_sync"' 1
	is "$f" xdpmirror_disk_state '.labels.disk == "local" and .labels.state == "UpToDate"' 1
	is "$f" xdpmirror_out_of_sync_bytes true 0
	is "$f" xdpmirror_peer_reachable true 1
	at_least "$f" xdpmirror_rtt_seconds '.labels.source == "heartbeat"' 1e-9
done
is "$p" xdpmirror_disk_state '.labels.disk == "peer" and .labels.state == "UpToDate"' 1
at_least "$p" xdpmirror_nbd_bytes_total '.labels.op == "write"' $((4 * MB))
at_least "$p" xdpmirror_data_payload_bytes_total '.labels.direction == "tx"' $((4 * MB))
at_least "$s" xdpmirror_data_payload_bytes_total '.labels.direction == "rx"' $((4 * MB))
# The initial full sync of the 32 MiB disk went out as resync, and came in as resync.
at_least "$p" xdpmirror_resync_bytes_total '.labels.direction == "tx"' $((32 * MB))
at_least "$s" xdpmirror_resync_bytes_total '.labels.direction == "rx"' $((32 * MB))
# DATA frames: sent by the primary's daemon, received by the secondary's XDP program; it sees
# every first send (and any retransmission).
sent=$(value "$p" xdpmirror_frames_total '.labels.direction == "tx" and .labels.type == "data"')
at_least "$p" xdpmirror_frames_total '.labels.direction == "tx" and .labels.type == "data"' 1024
at_least "$s" xdpmirror_frames_total '.labels.direction == "rx" and .labels.type == "data"' "$sent"
at_least "$s" xdpmirror_frame_bytes_total '.labels.type == "data"' $((36 * MB))
# Drops by reason are the XDP map's, as bpftool reads it.
is "$s" xdpmirror_xdp_drops_total '.labels.reason == "bad_magic"' "$(bpf_counter "$S" drop.bad_magic)"
at_least "$s" xdpmirror_xdp_drops_total '.labels.reason == "bad_magic"' 3
at_least "$s" xdpmirror_xdp_drops_total '.labels.reason == "bad_peer"' 5
assert_eq "$(jq '[.[] | select(.name == "xdpmirror_xdp_drops_total")] | length' "$s")" 8 "drop reasons"
is "$p" xdpmirror_retransmits_total '.labels.reason == "timeout"' \
	"$(status_json "$P" | jq .daemon.counters.tx_retrans_rto)"

log "the write latency histogram is cumulative and counts the writes"
writes=$(value "$p" xdpmirror_writes_total true)
hist() { jq "[.[] | select(.name == \"xdpmirror_write_latency_seconds_$1\" and .labels.stage == \"answered\")]" "$p"; }
count=$(hist count | jq '.[0].value')
at_least "$p" xdpmirror_write_latency_seconds_count '.labels.stage == "answered"' "$writes"
assert_eq "$(hist bucket | jq '.[-1].labels.le')" '"+Inf"' "last bucket"
assert_eq "$(hist bucket | jq '.[-1].value')" "$count" "+Inf bucket against _count"
assert_eq "$(hist bucket | jq '[.[].value] | . == sort')" true "buckets cumulative"
assert_eq "$(hist bucket | jq '[.[].labels.le | tonumber? // 1e99] | . == sort')" true "le ascending"
at_least "$p" xdpmirror_write_latency_seconds_sum '.labels.stage == "answered"' 1e-6
is "$p" xdpmirror_write_latency_seconds_count '.labels.stage == "answered"' \
	"$(status_json "$P" | jq .daemon.latency.answered.count)"

log "every attached device, without --dev"
# Other runs' daemons on this machine are listed too; one of them being stopped or detaching
# makes the exit 1, which is theirs.  Ours must answer.
"$XM" metrics >"$WORK/all.prom" 2>"$WORK/all.err"
rc=$?
[ $rc -le 1 ] || fail "metrics: exit $rc: $(cat "$WORK/all.err")"
grep -q -e "'$P'" -e "'$S'" "$WORK/all.err" && fail "metrics: $(cat "$WORK/all.err")"
parse "$WORK/all.prom"
is "$WORK/all.prom.json" xdpmirror_up "$(dev_is "$P")" 1
is "$WORK/all.prom.json" xdpmirror_up "$(dev_is "$S")" 1

log "GET /metrics from each box's daemon"
for box in primary secondary; do
	in_box $box curl -sS -D "$WORK/$box.headers" -o "$WORK/$box.http.prom" \
		"http://127.0.0.1:$PORT/metrics" || fail "curl $box"
	grep -qi '^content-type: text/plain; version=0.0.4' "$WORK/$box.headers" ||
		fail "$box: $(cat "$WORK/$box.headers")"
	parse "$WORK/$box.http.prom"
done
diff <(families "$p") <(families "$WORK/primary.http.prom.json") || fail "HTTP and CLI families differ (primary)"
diff <(families "$s") <(families "$WORK/secondary.http.prom.json") || fail "HTTP and CLI families differ (secondary)"
at_least "$WORK/primary.http.prom.json" xdpmirror_nbd_bytes_total '.labels.op == "write"' $((4 * MB))
is "$WORK/primary.http.prom.json" xdpmirror_replication_state ".labels.state == \"connected\" and $(dev_is "$P")" 1
code() { in_box primary curl -s -o /dev/null -w '%{http_code}' "$@"; }
assert_eq "$(code "http://127.0.0.1:$PORT/")" 404 "GET /"
assert_eq "$(code "http://127.0.0.1:$PORT/metrics/x")" 404 "GET /metrics/x"
assert_eq "$(code -X POST -d x "http://127.0.0.1:$PORT/metrics")" 405 "POST /metrics"

log "a detached device is 'not attached', exit 3"
mirror_down
"$XM" metrics --dev "$P" >"$WORK/gone.prom" 2>"$WORK/gone.err"
assert_eq "$?" 3 "exit code for a detached device"
grep -q "metrics '$P': not attached" "$WORK/gone.err" || fail "said: $(cat "$WORK/gone.err")"
parse "$WORK/gone.prom"
is "$WORK/gone.prom.json" xdpmirror_up "$(dev_is "$P")" 0
in_box primary curl -s -m 2 "http://127.0.0.1:$PORT/metrics" >/dev/null && fail "the port still answers after detach"
echo "all checks passed"

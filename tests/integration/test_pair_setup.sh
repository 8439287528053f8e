#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Description: pair-setup.sh for a real box: --dry-run reports the NIC, prints every action and
# changes nothing; a real run writes the config that attach then reads.
source "$(dirname "$0")/../lib.sh"
require_root
pair_up p
cfg=$WORK/eth.conf
args=(--role primary --dev "$P" --disk "$XM_PRIMARY_DISK" --peer "$XM_SECONDARY_MAC" --xdpmirror "$XM")

out=$(ip netns exec "$XM_PRIMARY_NS" "$PAIR" "${args[@]}" --mtu 4000 --config "$cfg" --dry-run 2>&1) ||
	fail "dry run failed: $out"
grep -q "would: ip link set dev $P mtu 4000" <<<"$out" || fail "dry run did not show the MTU step: $out"
grep -q "would: write $cfg" <<<"$out" || fail "dry run did not show the config: $out"
grep -qE "native XDP +yes" <<<"$out" || fail "dry run did not check XDP: $out"
[ ! -e "$cfg" ] || fail "dry run wrote the config"
assert_eq "$(ip -n "$XM_PRIMARY_NS" -j link show dev "$P" | jq '.[0].mtu')" "$XM_MTU" "MTU after dry run"

ip netns exec "$XM_PRIMARY_NS" "$PAIR" "${args[@]}" --mtu 4000 --config "$cfg" >/dev/null || fail "real run failed"
assert_eq "$(ip -n "$XM_PRIMARY_NS" -j link show dev "$P" | jq '.[0].mtu')" 4000 "MTU after real run"
grep -qx "peer = $XM_SECONDARY_MAC" "$cfg" || fail "config lacks the peer: $(cat "$cfg")"

log "the config written by pair-setup is what attach --config reads"
in_box primary "$XM" attach --config "$cfg" --meta "$(box_meta primary)" --daemon || fail "attach --config $cfg"
assert_eq "$(status_json "$P" | jq -r .daemon.role)" primary "role from the config file"
assert_eq "$(status_json "$P" | jq -r .daemon.mtu)" 4000 "MTU seen by the daemon"
"$XM" detach --dev "$P" || fail "detach"

out=$("$PAIR" --role primary --dev nosuchif0 --disk "$XM_PRIMARY_DISK" --peer "$XM_SECONDARY_MAC" --dry-run 2>&1)
[ $? -ne 0 ] || fail "pair-setup accepted a missing interface"
grep -q "'nosuchif0': no such interface" <<<"$out" || fail "missing interface said: $out"
echo "all checks passed"

#!/usr/bin/env bash
# Test rig: a single-node Ceph (one monitor, one memory-backed OSD, the RADOS
# gateway on 127.0.0.1) from Debian's packages, as root, in DIR. A real object
# store for the s3 backend's tests (../shared/RIG.md has the recipe).
#   ceph.sh start DIR MON_PORT RGW_PORT ACCESS_KEY SECRET_KEY   (returns once S3 answers)
#   ceph.sh stop DIR
# NSC_CEPH_BYTES: the OSD's memory (default 4 GiB; every object lives in it).
set -euo pipefail
cmd=$1 dir=$2
export CEPH_CONF=$dir/ceph.conf

stop() {
  for pid in "$dir"/run/*.pid; do
    [ -e "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
  done
  # radosgw writes no pid file before it is up: find it by its config.
  pkill -f -- "--conf $CEPH_CONF" 2>/dev/null || true
}

if [ "$cmd" = stop ]; then
  stop
  exit 0
fi

mon_port=$3 rgw_port=$4 access=$5 secret=$6
classes=$(dirname "$(find /usr/lib -name libcls_rgw.so -print -quit)")
mkdir -p "$dir/run" "$dir/log" "$dir/mon" "$dir/osd" "$dir/rgw"
cat > "$CEPH_CONF" <<EOF
[global]
fsid = $(cat /proc/sys/kernel/random/uuid)
mon host = v1:127.0.0.1:$mon_port
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
osd pool default size = 1
osd pool default min size = 1
osd crush chooseleaf type = 0
run dir = $dir/run
pid file = $dir/run/\$name.pid
log file = $dir/log/\$name.log
admin socket = $dir/run/\$name.asok
osd objectstore = memstore
memstore device bytes = ${NSC_CEPH_BYTES:-4294967296}
osd class update on start = false
osd crush update on start = false
osd data = $dir/osd/\$id
osd class dir = $classes
rgw data = $dir/rgw
mon allow pool delete = true
[mon.a]
mon data = $dir/mon/a
EOF

trap 'stop' ERR
ceph-mon --conf "$CEPH_CONF" --id a --mkfs --keyring /dev/null
touch "$dir/mon/a/keyring"
ceph-mon --conf "$CEPH_CONF" --id a
for _ in $(seq 100); do ceph --conf "$CEPH_CONF" -s >/dev/null 2>&1 && break; sleep 0.2; done

uuid=$(cat /proc/sys/kernel/random/uuid)
id=$(ceph --conf "$CEPH_CONF" osd create "$uuid")
mkdir -p "$dir/osd/$id"
ceph-osd --conf "$CEPH_CONF" --id "$id" --mkfs --osd-uuid "$uuid" 2>/dev/null
ceph-osd --conf "$CEPH_CONF" --id "$id"
ceph --conf "$CEPH_CONF" osd crush add "osd.$id" 1 root=default host=localhost >/dev/null 2>&1
for _ in $(seq 150); do
  ceph --conf "$CEPH_CONF" osd stat 2>/dev/null | grep -q '1 up' && break
  sleep 0.2
done

radosgw --conf "$CEPH_CONF" -n client.rgw.a --rgw-frontends="beast endpoint=127.0.0.1:$rgw_port"
for _ in $(seq 150); do
  radosgw-admin --conf "$CEPH_CONF" user create --uid=t --display-name=t \
    --access-key="$access" --secret-key="$secret" >/dev/null 2>&1 && break
  sleep 0.2
done
for _ in $(seq 150); do
  curl -s -o /dev/null "http://127.0.0.1:$rgw_port/" && exit 0
  sleep 0.2
done
echo "ceph.sh: the gateway did not answer on 127.0.0.1:$rgw_port" >&2
stop
exit 1

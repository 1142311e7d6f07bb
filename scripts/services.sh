#!/usr/bin/env bash
# Installs and starts the services adstream's Kafka, ClickHouse and Redis parts talk to, as
# local processes on loopback. Idempotent: a service that already answers is left alone.
#
#   scripts/services.sh start     # install what is missing, start what is not running, wait
#   scripts/services.sh status    # say what answers where
#   scripts/services.sh stop      # stop what this script started
#   scripts/services.sh restart redis|clickhouse|kafka   # stop one (whoever started it), start it
#   scripts/services.sh stop-one redis|clickhouse|kafka  # stop one (the failure tests do this)
#
# Redis       127.0.0.1:6379   Debian's redis-server
# ClickHouse  127.0.0.1:8123   Debian's clickhouse-server (18.16)
# Kafka API   127.0.0.1:9092   tansu 0.6 (crates.io), built once into the cache
#
# State and logs go to $ADSTREAM_SERVICES_DIR (default ~/.cache/adstream/services); the
# tansu binary is cached under $ADSTREAM_CACHE (default ~/.cache/adstream).
set -euo pipefail

CACHE=${ADSTREAM_CACHE:-$HOME/.cache/adstream}
STATE=${ADSTREAM_SERVICES_DIR:-$CACHE/services}
TANSU_VERSION=0.6.0
# The features are part of the cache key: a binary built with other features is another binary.
TANSU_FEATURES=dynostore,libsql,postgres
TANSU_ROOT=$CACHE/tansu-$TANSU_VERSION-${TANSU_FEATURES//,/-}
TANSU=$TANSU_ROOT/bin/tansu

log() { echo "services: $*" >&2; }
die() { echo "services: error: $*" >&2; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_for NAME PORT SECONDS CHECK...: waits until CHECK succeeds.
wait_for() {
    local name=$1 port=$2 seconds=$3; shift 3
    for ((i = 0; i < seconds * 4; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.25
    done
    die "$name did not answer on 127.0.0.1:$port within ${seconds}s (logs: $STATE/$name/)"
}

# detach DIR LOG COMMAND...: runs COMMAND in DIR in its own session, with no tie to this
# script's terminal or pipes (a test runner waiting on our output must not wait on the
# service), and records its pid in DIR/pid.
detach() {
    local dir=$1 logfile=$2; shift 2
    setsid bash -c 'cd "$1" && shift && exec "$@"' _ "$dir" "$@" </dev/null >"$logfile" 2>&1 &
    echo $! >"$dir/pid"
}

apt_install() {
    command -v apt-get >/dev/null || die "cannot install $*: no apt-get; install it by hand"
    log "installing $* from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "$@" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q "$@" >/dev/null; } \
        || die "apt-get install $* failed"
}

redis_ok() { redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG; }
clickhouse_ok() { [ "$(curl -fs http://127.0.0.1:8123/ping 2>/dev/null)" = "Ok." ]; }
# The broker listens only once it is ready ("ready in ..." in its log).
kafka_ok() { port_open 9092; }

start_redis() {
    command -v redis-cli >/dev/null || apt_install redis-server
    if redis_ok 2>/dev/null; then log "redis answers on 127.0.0.1:6379"; return; fi
    command -v redis-server >/dev/null || apt_install redis-server
    mkdir -p "$STATE/redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
        --dir "$STATE/redis" --logfile "$STATE/redis/redis.log" --pidfile "$STATE/redis/pid"
    wait_for redis 6379 30 redis_ok
    log "redis started on 127.0.0.1:6379"
}

start_clickhouse() {
    command -v curl >/dev/null || apt_install curl
    if clickhouse_ok; then log "clickhouse answers on 127.0.0.1:8123"; return; fi
    command -v clickhouse-server >/dev/null || apt_install clickhouse-server clickhouse-client
    local dir=$STATE/clickhouse
    mkdir -p "$dir"
    detach "$dir" "$dir/stdout.log" clickhouse-server --config-file=/etc/clickhouse-server/config.xml -- \
        --path="$dir/data/" --tmp_path="$dir/tmp/" --user_files_path="$dir/user_files/" \
        --format_schema_path="$dir/format_schemas/" \
        --logger.log="$dir/clickhouse.log" --logger.errorlog="$dir/clickhouse.err.log"
    wait_for clickhouse 8123 120 clickhouse_ok
    log "clickhouse started on 127.0.0.1:8123"
}

install_tansu() {
    [ -x "$TANSU" ] && return
    command -v cargo >/dev/null || die "cargo is needed to build tansu"
    log "building tansu $TANSU_VERSION from crates.io (about 20 minutes on 2 cores; cached in $CACHE)"
    # --locked: without it the postgres feature fails to compile; the binary is cached, so
    # this runs once per machine. The log keeps progress visible without flooding.
    mkdir -p "$CACHE"
    if ! cargo install --locked tansu --version "$TANSU_VERSION" --features "$TANSU_FEATURES" \
        --root "$TANSU_ROOT" >"$CACHE/tansu-build.log" 2>&1; then
        tail -20 "$CACHE/tansu-build.log" >&2
        die "building tansu failed (full log: $CACHE/tansu-build.log)"
    fi
    log "tansu built"
}

start_kafka() {
    install_tansu
    if kafka_ok; then log "kafka (tansu) answers on 127.0.0.1:9092"; return; fi
    local dir=$STATE/kafka
    mkdir -p "$dir"
    # sqlite storage keeps messages across a restart (seen: all there after kill -9).
    detach "$dir" "$dir/broker.log" "$TANSU" broker --listener-url tcp://127.0.0.1:9092 \
        --advertised-listener-url tcp://127.0.0.1:9092 --storage-engine sqlite://tansu.db
    wait_for kafka 9092 60 kafka_ok
    index_headers "$dir/tansu.db"
    log "kafka (tansu) started on 127.0.0.1:9092"
}

# tansu 0.6's SQLite schema has no index on record headers, and every fetch looks up each
# record's headers: once a topic holds a few thousand records with headers (dead letters),
# every topic's fetches slow to a crawl (seen here: 58k to 790 records/s with 45k header
# rows). The index restores them (35k/s); it is idempotent and safe while the broker runs.
index_headers() {
    python3 - "$1" <<'PY' || log "could not index the broker's header table (fetches stay slow with many headers)"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=30)
db.execute("create index if not exists header_topition_offset on header (topition, offset_id)")
db.commit()
PY
}

stop_one() {
    local name=$1 pidfile=$STATE/$1/pid
    [ -f "$pidfile" ] || return 0
    local pid
    pid=$(cat "$pidfile")
    if kill "$pid" 2>/dev/null; then
        for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        # A broker that does not stop in 10 s is stuck; its storage is durable, so kill it.
        kill -9 "$pid" 2>/dev/null && log "$name did not stop in 10 s; killed it"
        log "stopped $name"
    fi
    rm -f "$pidfile"
}

status() {
    local ok=0
    if redis_ok 2>/dev/null; then log "redis: up (127.0.0.1:6379)"; else log "redis: down (127.0.0.1:6379)"; ok=1; fi
    if clickhouse_ok 2>/dev/null; then log "clickhouse: up (127.0.0.1:8123)"; else log "clickhouse: down (127.0.0.1:8123)"; ok=1; fi
    if [ -x "$TANSU" ] && kafka_ok; then log "kafka: up (127.0.0.1:9092)"; else log "kafka: down (127.0.0.1:9092)"; ok=1; fi
    return $ok
}

# kill_one NAME: stops a service whoever started it (the failure tests restart services the
# session started too).
kill_one() {
    case "$1" in
        redis) redis-cli -h 127.0.0.1 -p 6379 shutdown nosave >/dev/null 2>&1 || true
               for _ in $(seq 40); do redis_ok 2>/dev/null || break; sleep 0.25; done ;;
        clickhouse) stop_one clickhouse
               pkill -f 'clickhouse-server --config-file' 2>/dev/null || true
               for _ in $(seq 120); do clickhouse_ok || break; sleep 0.25; done ;;
        kafka) stop_one kafka
               pkill -f "$TANSU broker" 2>/dev/null || true
               for _ in $(seq 40); do port_open 9092 || break; sleep 0.25; done ;;
        *) die "no service \`$1\` (redis, clickhouse, kafka)" ;;
    esac
    log "stopped $1"
}

start_named() {
    case "$1" in
        redis) start_redis ;; clickhouse) start_clickhouse ;; kafka) start_kafka ;;
        *) die "no service \`$1\` (redis, clickhouse, kafka)" ;;
    esac
}

case "${1:-start}" in
    start) start_redis; start_clickhouse; start_kafka ;;
    stop) stop_one kafka; stop_one clickhouse; stop_one redis ;;
    status) status ;;
    restart) kill_one "${2:?which service}"; start_named "$2" ;;
    stop-one) kill_one "${2:?which service}" ;;
    start-one) start_named "${2:?which service}" ;;
    *) die "usage: $0 start|stop|status|restart NAME|stop-one NAME|start-one NAME" ;;
esac

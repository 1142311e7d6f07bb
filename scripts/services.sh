#!/usr/bin/env bash
# Installs and starts the services adstream's Kafka, ClickHouse and Redis parts talk to, as
# local processes on loopback. Idempotent: a service that already answers is left alone,
# and only what this script started is ever stopped (by the pid it recorded). Tests that
# stop, restart or configure a service run private instances (scripts/instance.sh).
#
#   scripts/services.sh start     # install what is missing, start what is not running, wait
#   scripts/services.sh status    # say what answers where
#   scripts/services.sh stop      # stop what this script started
#   scripts/services.sh broker-path                 # the broker binary (built once)
#   scripts/services.sh broker-args PORT [CERTS] [USER:PASSWORD]   # its arguments
#
# Redis       127.0.0.1:6379   Debian's redis-server
# ClickHouse  127.0.0.1:8123   Debian's clickhouse-server (18.16)
# Kafka API   127.0.0.1:9092   nisshi 0.8.1 (crates.io), SQLite storage, built once into the cache
#
# State and logs go to $ADSTREAM_SERVICES_DIR (default ~/.cache/adstream/services); the
# broker binary is cached under $ADSTREAM_CACHE (default ~/.cache/adstream).
set -euo pipefail

CACHE=${ADSTREAM_CACHE:-$HOME/.cache/adstream}
STATE=${ADSTREAM_SERVICES_DIR:-$CACHE/services}
BROKER_VERSION=0.8.1
# The features are part of the cache key: a binary built with other features is another binary.
BROKER_FEATURES=dynostore,libsql
BROKER_ROOT=$CACHE/nisshi-$BROKER_VERSION-${BROKER_FEATURES//,/-}
BROKER=$BROKER_ROOT/bin/nisshi

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
    # The append-only file, synced at every write: the webhook cooldown keys kept here are
    # what sends each alert once, and they must survive a restart (README, "Delivery").
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly yes --appendfsync always \
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

install_broker() {
    [ -x "$BROKER" ] && return
    command -v cargo >/dev/null || die "cargo is needed to build the broker (nisshi)"
    # nisshi needs rustc >= 1.96 (its rama dependency): the machine's nightly toolchain.
    rustup run nightly rustc --version >/dev/null 2>&1 \
        || die "building the broker (nisshi $BROKER_VERSION) needs a nightly Rust toolchain (rustc >= 1.96): rustup toolchain install nightly"
    log "building the broker, nisshi $BROKER_VERSION, from crates.io (about 15-25 minutes on 2 cores; cached in $CACHE)"
    mkdir -p "$CACHE"
    # From the cache folder, so no rust-toolchain.toml of a checkout applies; --locked
    # builds the dependency versions nisshi was released with.
    if ! (cd "$CACHE" && cargo +nightly install --locked nisshi --version "$BROKER_VERSION" \
        --no-default-features --features "$BROKER_FEATURES" --root "$BROKER_ROOT") \
        >"$CACHE/nisshi-build.log" 2>&1; then
        tail -20 "$CACHE/nisshi-build.log" >&2
        die "building the broker failed (full log: $CACHE/nisshi-build.log)"
    fi
    log "broker built"
}

# broker_args PORT [CERTS] [USER:PASSWORD]: the broker's command line, one argument per
# line: listening on 127.0.0.1:PORT with SQLite storage in the folder it runs in (a
# relative path: nisshi reads `sqlite:///abs` as relative too), with TLS from CERTS
# (scripts/tls-certs.sh) and SASL/SCRAM client authentication when given (the user is
# made by scripts/instance.sh).
broker_args() {
    local port=$1 certs=${2:-} sasl=${3:-}
    printf '%s\n' broker --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "tcp://127.0.0.1:$port" --storage-engine "sqlite://nisshi.db"
    [ -n "$certs" ] && printf '%s\n' --cert "$certs/server.pem" --key "$certs/server.key"
    [ -n "$sasl" ] && printf '%s\n' --authentication
    return 0
}

start_kafka() {
    install_broker
    if kafka_ok; then log "kafka answers on 127.0.0.1:9092"; return; fi
    local dir=$STATE/kafka args
    mkdir -p "$dir"
    mapfile -t args < <(broker_args 9092)
    detach "$dir" "$dir/broker.log" "$BROKER" "${args[@]}"
    wait_for kafka 9092 60 kafka_ok
    log "kafka (nisshi $BROKER_VERSION) started on 127.0.0.1:9092"
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
    if [ -x "$BROKER" ] && kafka_ok; then log "kafka: up (127.0.0.1:9092)"; else log "kafka: down (127.0.0.1:9092)"; ok=1; fi
    return $ok
}

case "${1:-start}" in
    start) start_redis; start_clickhouse; start_kafka ;;
    stop) stop_one kafka; stop_one clickhouse; stop_one redis ;;
    status) status ;;
    broker-path) install_broker; echo "$BROKER" ;;
    broker-args) broker_args "${2:?PORT}" "${3:-}" "${4:-}" ;;
    *) die "usage: $0 start|stop|status|broker-path|broker-args PORT [CERTS] [USER:PASSWORD]" ;;
esac

#!/usr/bin/env bash
# Private service instances, for the tests that stop, restart or configure a service
# (the failure tests, the TLS tests). Each lives in a folder of its own, listens on ports
# found free, and is stopped only through the pid it was started with: nothing here
# touches a service it did not start. The shared services are scripts/services.sh's.
#
#   scripts/instance.sh start DIR redis [--persist] [--tls CERTS] [--password P]
#   scripts/instance.sh start DIR clickhouse [--tls CERTS] [--password P]
#   scripts/instance.sh start DIR kafka [--tls CERTS] [--sasl USER:PASSWORD]
#   scripts/instance.sh start DIR chdb     # a current ClickHouse (chdb-core, PyPI) over HTTP
#   scripts/instance.sh start DIR s3       # an S3-compatible store (moto, PyPI), bucket `adstream`
#   scripts/instance.sh stop DIR NAME      # gracefully
#   scripts/instance.sh kill DIR NAME      # kill -9 (a Redis without --persist loses its data)
#   scripts/instance.sh restart DIR NAME   # stop, then start again: same ports, same options
#
# `start` waits until the service answers and prints `port=N` (and `https_port=N` for
# ClickHouse with TLS). CERTS is a folder made by scripts/tls-certs.sh. --persist turns
# on Redis's append-only file, synced at every write.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "instance: $*" >&2; }
die() { echo "instance: error: $*" >&2; exit 1; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_until SECONDS DIR CHECK...: until CHECK succeeds, or the instance died.
wait_until() {
    local seconds=$1 dir=$2; shift 2
    for ((i = 0; i < seconds * 4; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        kill -0 "$(cat "$dir/pid")" 2>/dev/null || die "$(basename "$dir") exited at start (log: $dir/log)"
        sleep 0.25
    done
    die "$(basename "$dir") did not answer within ${seconds}s (log: $dir/log)"
}

# run_detached DIR COMMAND...: in its own session, its pid in DIR/pid.
run_detached() {
    local dir=$1; shift
    setsid bash -c 'cd "$1" && shift && exec "$@"' _ "$dir" "$@" </dev/null >>"$dir/log" 2>&1 &
    echo $! >"$dir/pid"
}

# The options a `start` was given, kept for `restart`.
declare -A opt
parse_options() {
    opt=([persist]="" [tls]="" [password]="" [sasl]="")
    while [ $# -gt 0 ]; do
        case "$1" in
            --persist) opt[persist]=1; shift ;;
            --tls) opt[tls]=$(realpath "$2"); shift 2 ;;
            --password) opt[password]=$2; shift 2 ;;
            --sasl) opt[sasl]=$2; shift 2 ;;
            *) die "unknown option $1" ;;
        esac
    done
}

# port_of DIR KEY: the port kept in DIR/KEY, chosen free the first time.
port_of() {
    [ -f "$1/$2" ] || free_port >"$1/$2"
    cat "$1/$2"
}

start_redis() {
    local dir=$1 port
    command -v redis-server >/dev/null || die "redis-server is not installed (scripts/services.sh start installs it)"
    port=$(port_of "$dir" port)
    local args=(--bind 127.0.0.1 --dir "$dir" --save "" --logfile "$dir/log")
    if [ -n "${opt[persist]}" ]; then args+=(--appendonly yes --appendfsync always); else args+=(--appendonly no); fi
    [ -n "${opt[password]}" ] && args+=(--requirepass "${opt[password]}")
    local cli=(redis-cli -p "$port")
    if [ -n "${opt[tls]}" ]; then
        args+=(--port 0 --tls-port "$port" --tls-cert-file "${opt[tls]}/server.pem"
            --tls-key-file "${opt[tls]}/server.key" --tls-ca-cert-file "${opt[tls]}/ca.pem"
            --tls-auth-clients no)
        cli+=(--tls --cacert "${opt[tls]}/ca.pem")
    else
        args+=(--port "$port")
    fi
    [ -n "${opt[password]}" ] && cli+=(-a "${opt[password]}" --no-auth-warning)
    run_detached "$dir" redis-server "${args[@]}"
    wait_until 30 "$dir" bash -c '"$@" ping | grep -q PONG' _ "${cli[@]}"
    echo "port=$port"
}

start_clickhouse() {
    local dir=$1 http tcp inter
    command -v clickhouse-server >/dev/null || die "clickhouse-server is not installed (scripts/services.sh start installs it)"
    http=$(port_of "$dir" port); tcp=$(port_of "$dir" tcp_port); inter=$(port_of "$dir" interserver_port)
    mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas"
    # The users file: Debian's, with the default user's password set when asked for.
    sed "s|<password></password>|<password>${opt[password]}</password>|" \
        /etc/clickhouse-server/users.xml >"$dir/users.xml"
    local args=(--config-file=/etc/clickhouse-server/config.xml -- --path="$dir/data/"
        --tmp_path="$dir/tmp/" --user_files_path="$dir/user_files/"
        --format_schema_path="$dir/format_schemas/" --users_config="$dir/users.xml"
        --logger.log="$dir/clickhouse.log" --logger.errorlog="$dir/clickhouse.err.log"
        --http_port="$http" --tcp_port="$tcp" --interserver_http_port="$inter")
    local check=(curl -fs "http://127.0.0.1:$http/ping")
    if [ -n "${opt[tls]}" ]; then
        local https
        https=$(port_of "$dir" https_port)
        [ -f "$dir/dh.pem" ] || openssl dhparam -dsaparam -out "$dir/dh.pem" 2048 2>/dev/null
        args+=(--https_port="$https" --openSSL.server.certificateFile="${opt[tls]}/server.pem"
            --openSSL.server.privateKeyFile="${opt[tls]}/server.key"
            --openSSL.server.dhParamsFile="$dir/dh.pem")
        check=(curl -fs --cacert "${opt[tls]}/ca.pem" "https://127.0.0.1:$https/ping")
    fi
    run_detached "$dir" clickhouse-server "${args[@]}"
    wait_until 120 "$dir" "${check[@]}"
    echo "port=$http"
    [ -n "${opt[tls]}" ] && echo "https_port=$(cat "$dir/https_port")"
    return 0
}

start_kafka() {
    local dir=$1 port broker args
    broker=$(scripts/services.sh broker-path)
    port=$(port_of "$dir" port)
    if [ -n "${opt[sasl]}" ] && [ ! -f "$dir/user" ]; then
        # Users live in the broker's storage and are made through the broker, which must
        # not require authentication yet: made once, before the first authenticated start.
        mapfile -t args < <(scripts/services.sh broker-args "$port")
        run_detached "$dir" "$broker" "${args[@]}"
        wait_until 60 "$dir" port_open "$port"
        "$broker" user create "${opt[sasl]%%:*}" "${opt[sasl]#*:}" --broker "tcp://127.0.0.1:$port" >>"$dir/log" 2>&1
        stop_pid "$dir" TERM
        echo "${opt[sasl]%%:*}" >"$dir/user"
    fi
    mapfile -t args < <(scripts/services.sh broker-args "$port" "${opt[tls]}" "${opt[sasl]}")
    run_detached "$dir" "$broker" "${args[@]}"
    wait_until 60 "$dir" port_open "$port"
    echo "port=$port"
}

CHDB_VERSION=26.9.0

# The Python of a virtual environment with chdb-core, made once in the cache.
chdb_python() {
    local venv=${ADSTREAM_CACHE:-$HOME/.cache/adstream}/chdb-$CHDB_VERSION
    if ! "$venv/bin/python" -c 'import chdb' 2>/dev/null; then
        log "installing chdb-core $CHDB_VERSION (ClickHouse 26.x, in-process) from PyPI into $venv"
        python3 -m venv "$venv" >&2 && "$venv/bin/pip" install -q "chdb-core==$CHDB_VERSION" >&2 \
            || die "installing chdb-core $CHDB_VERSION failed"
    fi
    echo "$venv/bin/python"
}

start_chdb() {
    local dir=$1 port python
    python=$(chdb_python)
    port=$(port_of "$dir" port)
    run_detached "$dir" "$python" "$PWD/scripts/chdb-server.py" "$port" "$dir/data"
    wait_until 60 "$dir" curl -fs "http://127.0.0.1:$port/ping"
    echo "port=$port"
}

MOTO_VERSION=5.2.6

# An S3-compatible store with conditional puts (If-Match, If-None-Match), as the shared
# checkpoint store's tests need: moto's server, from PyPI into a virtual environment made
# once in the cache. It keeps objects in memory; its bucket `adstream` is made at start.
start_s3() {
    local dir=$1 port venv=${ADSTREAM_CACHE:-$HOME/.cache/adstream}/moto-$MOTO_VERSION
    if ! "$venv/bin/python" -c 'import moto.server' 2>/dev/null; then
        log "installing moto $MOTO_VERSION (an S3-compatible server) from PyPI into $venv"
        python3 -m venv "$venv" >&2 && "$venv/bin/pip" install -q "moto[server]==$MOTO_VERSION" >&2 \
            || die "installing moto $MOTO_VERSION failed"
    fi
    port=$(port_of "$dir" port)
    run_detached "$dir" "$venv/bin/moto_server" -H 127.0.0.1 -p "$port"
    wait_until 60 "$dir" curl -fs "http://127.0.0.1:$port/moto-api/"
    curl -fs -X PUT "http://127.0.0.1:$port/adstream" >/dev/null || die "creating bucket adstream failed"
    echo "port=$port"
}

start() {
    local dir=$1 name=$2; shift 2
    mkdir -p "$dir/$name"
    dir=$(realpath "$dir/$name")
    [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null && die "$name in $dir runs already"
    parse_options "$@"
    if [ $# -gt 0 ]; then printf '%s\n' "$@" >"$dir/options"; else : >"$dir/options"; fi
    case "$name" in
        redis) start_redis "$dir" ;;
        clickhouse) start_clickhouse "$dir" ;;
        kafka) start_kafka "$dir" ;;
        chdb) start_chdb "$dir" ;;
        s3) start_s3 "$dir" ;;
        *) die "no service \`$name\` (redis, clickhouse, kafka, chdb, s3)" ;;
    esac
}

# stop_pid DIR SIGNAL: signals the instance's process (only it), waits up to 30 s.
stop_pid() {
    local dir=$1 signal=$2 pid
    [ -f "$dir/pid" ] || return 0
    pid=$(cat "$dir/pid")
    if kill "-$signal" "$pid" 2>/dev/null; then
        for _ in $(seq 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        kill -0 "$pid" 2>/dev/null && { kill -9 "$pid"; log "$(basename "$dir") did not stop in 30 s; killed it"; }
    fi
    rm -f "$dir/pid"
}

action=${1:-}
case "$action" in
    start) start "${2:?DIR}" "${3:?NAME}" "${@:4}" ;;
    stop) stop_pid "$(realpath "${2:?DIR}")/${3:?NAME}" TERM ;;
    kill) stop_pid "$(realpath "${2:?DIR}")/${3:?NAME}" KILL ;;
    restart)
        dir=$(realpath "${2:?DIR}")/${3:?NAME}
        stop_pid "$dir" TERM
        mapfile -t saved <"$dir/options"
        start "$2" "$3" "${saved[@]}" ;;
    *) die "usage: $0 start DIR NAME [options] | stop DIR NAME | kill DIR NAME | restart DIR NAME" ;;
esac

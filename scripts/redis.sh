#!/usr/bin/env bash
# Runs a command with real Redis servers: one standalone redis-server and a 3-master
# Redis Cluster, on free loopback ports, in temporary folders. Stops them (by their
# process ids) when the command ends, also on failure or interrupt.
#
#   scripts/redis.sh cargo test -p tokencache-redis
#   scripts/redis.sh cargo bench -p tokencache-benches --bench redis
#
# Exports to the command:
#   TOKENCACHE_REDIS_URL=redis://127.0.0.1:P
#   TOKENCACHE_REDIS_CLUSTER_URLS=redis://127.0.0.1:P1,redis://127.0.0.1:P2,redis://127.0.0.1:P3
#   TOKENCACHE_REDIS_SERVER=/path/to/redis-server (the fault test starts its own servers)
# Installs redis-server and redis-tools with apt-get when they are missing.
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
fi

log() { echo "redis.sh: $*" >&2; }

if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    log "installing redis-server and redis-tools"
    apt-get update >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server redis-tools >/dev/null
fi
REDIS_SERVER="$(command -v redis-server)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/tokencache-redis.XXXXXX")"
PIDS=()

cleanup() {
    local status=$?
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A port P such that P and its cluster-bus port P+10000 are free.
free_port() {
    local p
    for _ in $(seq 1 200); do
        p=$((20000 + RANDOM % 35000))
        if ! port_busy "$p" && ! port_busy $((p + 10000)); then
            echo "$p"
            return 0
        fi
    done
    log "no free port found"
    return 1
}

# start_server NAME [extra redis-server args...]; prints the port.
start_server() {
    local name=$1
    shift
    local dir="$WORK/$name" port pid
    mkdir -p "$dir"
    for _ in $(seq 1 10); do
        port="$(free_port)"
        if "$REDIS_SERVER" --port "$port" --bind 127.0.0.1 --daemonize yes --save '' \
            --appendonly no --dir "$dir" --pidfile "$dir/redis.pid" \
            --logfile "$dir/redis.log" "$@" >/dev/null; then
            for _ in $(seq 1 100); do
                if [ -s "$dir/redis.pid" ] && redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then
                    pid="$(cat "$dir/redis.pid")"
                    PIDS+=("$pid")
                    echo "$port"
                    return 0
                fi
                sleep 0.05
            done
            # Started but never answered (the port was taken meanwhile): stop it, retry.
            [ -s "$dir/redis.pid" ] && kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
        fi
        rm -f "$dir/redis.pid"
    done
    log "could not start redis-server $name; its log:"
    cat "$dir/redis.log" >&2 || true
    return 1
}

# Not in a command substitution (a subshell): PIDS must be filled in this shell.
start_server standalone >"$WORK/port.standalone"
STANDALONE_PORT="$(cat "$WORK/port.standalone")"

CLUSTER_PORTS=()
for i in 1 2 3; do
    start_server "cluster$i" --cluster-enabled yes --cluster-config-file "$WORK/cluster$i/nodes.conf" \
        --cluster-node-timeout 2000 >"$WORK/port.cluster$i"
    CLUSTER_PORTS+=("$(cat "$WORK/port.cluster$i")")
done

redis-cli --cluster create "127.0.0.1:${CLUSTER_PORTS[0]}" "127.0.0.1:${CLUSTER_PORTS[1]}" \
    "127.0.0.1:${CLUSTER_PORTS[2]}" --cluster-replicas 0 --cluster-yes >"$WORK/cluster-create.log" 2>&1 || {
    log "redis-cli --cluster create failed:"
    cat "$WORK/cluster-create.log" >&2
    exit 1
}
for port in "${CLUSTER_PORTS[@]}"; do
    ok=""
    for _ in $(seq 1 200); do
        if redis-cli -p "$port" cluster info 2>/dev/null | grep -q 'cluster_state:ok'; then
            ok=1
            break
        fi
        sleep 0.05
    done
    if [ -z "$ok" ]; then
        log "cluster node on port $port never reached cluster_state:ok"
        exit 1
    fi
done

export TOKENCACHE_REDIS_URL="redis://127.0.0.1:$STANDALONE_PORT"
export TOKENCACHE_REDIS_CLUSTER_URLS="redis://127.0.0.1:${CLUSTER_PORTS[0]},redis://127.0.0.1:${CLUSTER_PORTS[1]},redis://127.0.0.1:${CLUSTER_PORTS[2]}"
export TOKENCACHE_REDIS_SERVER="$REDIS_SERVER"
log "standalone $TOKENCACHE_REDIS_URL; cluster $TOKENCACHE_REDIS_CLUSTER_URLS"

# Not exec: the trap must stop the servers when the command ends.
"$@"

#!/usr/bin/env bash
# Runs a command with real Redis servers: one standalone redis-server, a 3-master
# Redis Cluster, and a TLS-only server and 3-master cluster with an ACL user (their CA
# and certificate made with openssl for this run), on free loopback ports, in temporary folders. Stops them
# (by their process ids) when the command ends, also on failure or interrupt.
#
#   scripts/redis.sh cargo test -p tokencache-redis
#   scripts/redis.sh cargo bench -p tokencache-benches --bench redis
#
# Exports to the command:
#   TOKENCACHE_REDIS_URL=redis://127.0.0.1:P
#   TOKENCACHE_REDIS_CLUSTER_URLS=redis://127.0.0.1:P1,redis://127.0.0.1:P2,redis://127.0.0.1:P3
#   TOKENCACHE_REDIS_SERVER=/path/to/redis-server (the fault test starts its own servers)
#   TOKENCACHE_REDIS_TLS_URL=rediss://127.0.0.1:P (TLS only; no anonymous access)
#   TOKENCACHE_REDIS_TLS_CLUSTER_URLS=rediss://127.0.0.1:P1,... (the same, a cluster)
#   TOKENCACHE_REDIS_TLS_CA=/path/to/ca.crt (the CA that signed the server's certificate)
#   TOKENCACHE_REDIS_TLS_USER, TOKENCACHE_REDIS_TLS_PASSWORD (the ACL user of that server;
#   the password is random for each run)
# Installs redis-server, redis-tools and openssl with apt-get when they are missing.
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
fi

log() { echo "redis.sh: $*" >&2; }

if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1 \
    || ! command -v openssl >/dev/null 2>&1; then
    log "installing redis-server, redis-tools and openssl"
    apt-get update >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server redis-tools openssl >/dev/null
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

# start_server NAME [extra redis-server args...]; prints the port. With TLS_ARGS set (an
# array of redis-cli options), the port is a TLS-only port and the health check uses them.
TLS_ARGS=()
start_server() {
    local name=$1
    shift
    local dir="$WORK/$name" port pid listen
    mkdir -p "$dir"
    for _ in $(seq 1 10); do
        port="$(free_port)"
        if [ "${#TLS_ARGS[@]}" -eq 0 ]; then
            listen=(--port "$port")
        else
            listen=(--port 0 --tls-port "$port")
        fi
        if "$REDIS_SERVER" "${listen[@]}" --bind 127.0.0.1 --daemonize yes --save '' \
            --appendonly no --dir "$dir" --pidfile "$dir/redis.pid" \
            --logfile "$dir/redis.log" "$@" >/dev/null; then
            for _ in $(seq 1 100); do
                if [ -s "$dir/redis.pid" ] \
                    && redis-cli "${TLS_ARGS[@]}" -p "$port" ping 2>/dev/null | grep -q PONG; then
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

# start_cluster NAME [extra redis-server args...]: a 3-master cluster (health checks and
# `redis-cli --cluster create` with TLS_ARGS); its ports in CLUSTER_PORTS.
start_cluster() {
    local name=$1
    shift
    CLUSTER_PORTS=()
    local i port ok
    for i in 1 2 3; do
        start_server "$name$i" --cluster-enabled yes \
            --cluster-config-file "$WORK/$name$i/nodes.conf" --cluster-node-timeout 2000 \
            "$@" >"$WORK/port.$name$i"
        CLUSTER_PORTS+=("$(cat "$WORK/port.$name$i")")
    done
    # (bounded: redis-cli waits for ever for nodes that cannot join)
    timeout 60 redis-cli "${TLS_ARGS[@]}" --cluster create "127.0.0.1:${CLUSTER_PORTS[0]}" \
        "127.0.0.1:${CLUSTER_PORTS[1]}" "127.0.0.1:${CLUSTER_PORTS[2]}" \
        --cluster-replicas 0 --cluster-yes >"$WORK/$name-create.log" 2>&1 || {
        log "redis-cli --cluster create ($name) failed:"
        cat "$WORK/$name-create.log" >&2
        exit 1
    }
    for port in "${CLUSTER_PORTS[@]}"; do
        ok=""
        for _ in $(seq 1 200); do
            if redis-cli "${TLS_ARGS[@]}" -p "$port" cluster info 2>/dev/null \
                | grep -q 'cluster_state:ok'; then
                ok=1
                break
            fi
            sleep 0.05
        done
        if [ -z "$ok" ]; then
            log "$name node on port $port never reached cluster_state:ok"
            exit 1
        fi
    done
}

start_cluster cluster
PLAIN_CLUSTER_PORTS=("${CLUSTER_PORTS[@]}")

# The TLS servers: a CA and a certificate (for 127.0.0.1 and localhost; also a client
# certificate, as cluster nodes authenticate each other on the bus) made for this run; the
# default user is off, only the ACL user `tokencache` may log in.
TLS_DIR="$WORK/tls"
mkdir -p "$TLS_DIR"
(
    cd "$TLS_DIR"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj "/CN=tokencache test CA" -keyout ca.key -out ca.crt
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -subj "/CN=127.0.0.1" -keyout server.key -out server.csr
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
        -extfile server.ext -out server.crt
) >"$WORK/openssl.log" 2>&1 || {
    log "openssl could not make the test certificates:"
    cat "$WORK/openssl.log" >&2
    exit 1
}
TLS_USER=tokencache
TLS_PASSWORD="$(openssl rand -hex 16)"
TLS_ARGS=(--tls --cacert "$TLS_DIR/ca.crt" --user "$TLS_USER" --pass "$TLS_PASSWORD" --no-auth-warning)
TLS_SERVER_ARGS=(--tls-cert-file "$TLS_DIR/server.crt" --tls-key-file "$TLS_DIR/server.key"
    --tls-ca-cert-file "$TLS_DIR/ca.crt" --tls-auth-clients no
    --user default off --user "$TLS_USER" on ">$TLS_PASSWORD" '~*' '&*' +@all)
start_server tls "${TLS_SERVER_ARGS[@]}" >"$WORK/port.tls"
TLS_PORT="$(cat "$WORK/port.tls")"
# A TLS-only cluster with the same user (the cluster bus is TLS too).
start_cluster tlscluster "${TLS_SERVER_ARGS[@]}" --tls-cluster yes
TLS_CLUSTER_PORTS=("${CLUSTER_PORTS[@]}")
TLS_ARGS=()

export TOKENCACHE_REDIS_URL="redis://127.0.0.1:$STANDALONE_PORT"
export TOKENCACHE_REDIS_CLUSTER_URLS="redis://127.0.0.1:${PLAIN_CLUSTER_PORTS[0]},redis://127.0.0.1:${PLAIN_CLUSTER_PORTS[1]},redis://127.0.0.1:${PLAIN_CLUSTER_PORTS[2]}"
export TOKENCACHE_REDIS_SERVER="$REDIS_SERVER"
export TOKENCACHE_REDIS_TLS_URL="rediss://127.0.0.1:$TLS_PORT"
export TOKENCACHE_REDIS_TLS_CLUSTER_URLS="rediss://127.0.0.1:${TLS_CLUSTER_PORTS[0]},rediss://127.0.0.1:${TLS_CLUSTER_PORTS[1]},rediss://127.0.0.1:${TLS_CLUSTER_PORTS[2]}"
export TOKENCACHE_REDIS_TLS_CA="$TLS_DIR/ca.crt"
export TOKENCACHE_REDIS_TLS_USER="$TLS_USER"
export TOKENCACHE_REDIS_TLS_PASSWORD="$TLS_PASSWORD"
log "standalone $TOKENCACHE_REDIS_URL; cluster $TOKENCACHE_REDIS_CLUSTER_URLS; TLS $TOKENCACHE_REDIS_TLS_URL; TLS cluster $TOKENCACHE_REDIS_TLS_CLUSTER_URLS"

# Not exec: the trap must stop the servers when the command ends.
"$@"

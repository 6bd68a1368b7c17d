# bench/nginx.sh: the nginx reference rows of bench/run.sh (sourced by it, not run alone).
#
# Writes the configs of three nginx instances in $WORK and starts them, all in front of
# the same management point (127.0.0.1:$MP_PORT) as cmg:
#   ngx1   one mTLS hop: client certificate checked (root + intermediate, the demo CRLs),
#          then plain HTTP/1.1 with keep-alive to the MP;
#   ngx2a  first of two chained hops (the shape of gateway + connection point): mTLS from
#          the client, then TLS with keep-alive upstream to ngx2b;
#   ngx2b  second hop: TLS from ngx2a, plain HTTP/1.1 keep-alive to the MP.
# Every instance has its TLS session cache and session tickets off (no resumption: every
# `openssl s_time -new` connection is a full handshake anyway, and nothing else reconnects
# during a measurement), `worker_processes` = $NGINX_WORKERS (default: GW_THREADS, the
# gateway's data-path threads), no access log, and buffers large enough that a 64 KiB
# answer never goes to a temporary file. Does not install nginx: see bench/README.md.
#
# Needs: WORK MP_PORT SERVER_CERT SERVER_KEY ROOT_CA INTER_CA CRL GW_THREADS EXT, the
# functions log/die and the PIDS array of run.sh. Sets NGX1_PORT NGX2_PORT (client side)
# and NGX1_PID NGX2A_PID NGX2B_PID (master processes; run.sh's cleanup stops them).

NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
[[ -x $NGINX ]] || die "nginx missing (Debian: apt-get install nginx-light; see bench/README.md)"
NGINX_WORKERS=${NGINX_WORKERS:-$GW_THREADS}

read -r NGX1_PORT NGX2_PORT NGX2B_PORT < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
EOF
)

# The CA file nginx verifies clients against: root and intermediate (the demo client
# sends its intermediate too; nginx wants every CA of the chain for the CRL check).
cat "$ROOT_CA" "$INTER_CA" >"$WORK/nginx-client-cas.pem"

nginx_conf() { # name server-block
    local name=$1 server=$2 dir="$WORK/$1"
    mkdir -p "$dir/logs"
    local user=
    # Run as root (the bench's state directory is private to the user running it).
    (($(id -u) == 0)) && user="user root root;"
    cat >"$dir/nginx.conf" <<EOF
$user
worker_processes $NGINX_WORKERS;
worker_rlimit_nofile 20000;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events {
    worker_connections 20000;
    multi_accept on;
}
http {
    access_log off;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    keepalive_timeout 600s;
    keepalive_requests 1000000;
    # A 64 KiB answer stays in memory (no temporary file).
    proxy_buffer_size 16k;
    proxy_buffers 8 16k;
    proxy_busy_buffers_size 32k;
    proxy_max_temp_file_size 0;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    upstream mp {
        server 127.0.0.1:$MP_PORT;
        keepalive 128;
    }
    upstream ngx2b {
        server 127.0.0.1:$NGX2B_PORT;
        keepalive 128;
    }
$server
}
EOF
}

# TLS settings shared by every listener: TLS 1.2/1.3 (as the gateway), no resumption.
NGX_TLS="ssl_certificate $SERVER_CERT;
        ssl_certificate_key $SERVER_KEY;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache off;
        ssl_session_tickets off;"
NGX_MTLS="ssl_verify_client on;
        ssl_verify_depth 3;
        ssl_client_certificate $WORK/nginx-client-cas.pem;
        ssl_crl $CRL;"

nginx_conf ngx1 "    server {
        listen 127.0.0.1:$NGX1_PORT ssl;
        $NGX_TLS
        $NGX_MTLS
        location $EXT/ { proxy_pass http://mp/; }
    }"
nginx_conf ngx2a "    server {
        listen 127.0.0.1:$NGX2_PORT ssl;
        $NGX_TLS
        $NGX_MTLS
        location $EXT/ {
            proxy_pass https://ngx2b/;
            proxy_ssl_server_name on;
            proxy_ssl_name $SERVICE;
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate $ROOT_CA;
        }
    }"
nginx_conf ngx2b "    server {
        listen 127.0.0.1:$NGX2B_PORT ssl;
        $NGX_TLS
        location / { proxy_pass http://mp/; }
    }"

start_nginx() { # name
    "$NGINX" -p "$WORK/$1" -c "$WORK/$1/nginx.conf" -g 'daemon off;' >"$WORK/logs/$1.out" 2>&1 &
    PIDS+=("$!")
    log "started nginx $1 (pid $!, $NGINX_WORKERS worker(s))"
}
start_nginx ngx1
NGX1_PID=${PIDS[-1]}
start_nginx ngx2a
NGX2A_PID=${PIDS[-1]}
start_nginx ngx2b
NGX2B_PID=${PIDS[-1]}

# An nginx instance and its workers: master PID, then children.
nginx_pids() { # master-pid...
    local pid
    for pid in "$@"; do
        echo "$pid"
        pgrep -P "$pid" || true
    done
}

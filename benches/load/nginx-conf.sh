# Sourced by the benchmark scripts that write their own nginx configuration (h2.sh,
# l4-anchor.sh, l7-tls-anchor.sh): the settings the harness's servers/nginx.sh uses for
# every anchor.
#
# nginx_conf DIR MASTER TOP [FIRST] -> DIR/nginx.conf: FIRST (say, a load_module line),
# then one worker (master process MASTER, on or off), epoll, the pid file and error log
# under DIR, then TOP (the `http { }` or `stream { }` block).
nginx_conf() {
  local dir=$1 master=$2 top=$3 first=${4:-}
  mkdir -p "$dir/tmp" "$dir/logs"
  cat > "$dir/nginx.conf" <<CONF
${first:+$first
}worker_processes 1;
master_process $master;
daemon off;
user root;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
worker_rlimit_nofile 20000;
events { worker_connections 16384; use epoll; }
$top
CONF
}

# nginx_http DIR BODY -> an `http { }` block: no access log, keep-alive without request or
# time limits worth hitting, temporary files under DIR/tmp, then BODY.
nginx_http() {
  local dir=$1 body=$2
  cat <<CONF
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  client_body_temp_path $dir/tmp/cb; proxy_temp_path $dir/tmp/px; fastcgi_temp_path $dir/tmp/fc;
  uwsgi_temp_path $dir/tmp/uw; scgi_temp_path $dir/tmp/sc;
$body
}
CONF
}

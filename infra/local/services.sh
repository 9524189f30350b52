#!/usr/bin/env bash
# Make sure the local services the demo and the tests need are installed and running:
# MariaDB (MySQL-compatible), Redis, and a Java runtime for the KCL MultiLangDaemon; npm (the console's
# browser scripts are installed from the npm registry with their lockfile) and Debian's chromium (the
# console's browser tests drive it with Playwright: Playwright's own browser download is never used).
# Installs with apt on Debian/Ubuntu when something is missing. Idempotent.
set -euo pipefail

need_apt=()
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
[ -x /usr/sbin/mariadbd ] || command -v mysqld >/dev/null 2>&1 || need_apt+=(mariadb-server)
if [ ${#need_apt[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "installing: ${need_apt[*]}" >&2
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "missing ${need_apt[*]}: install them (or point REDIS_URL / MYSQL_URL at running servers)" >&2
    exit 1
  fi
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "starting redis" >&2
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
fi

mysql_up() { mysqladmin --protocol=tcp -h 127.0.0.1 -P 3306 -u root ping >/dev/null 2>&1; }
if ! mysql_up; then
  echo "starting mariadb" >&2
  if [ -x /usr/sbin/mariadbd ]; then
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  else
    service mysql start || service mariadb start
  fi
fi

for _ in $(seq 1 60); do
  if mysql_up && redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    exit 0
  fi
  # A fresh Debian MariaDB lets root in by unix socket only; the local defaults use TCP, no password.
  if [[ " ${need_apt[*]:-} " == *" mariadb-server "* ]] && mariadb -u root -e "SELECT 1" >/dev/null 2>&1; then
    mariadb -u root -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('')" || true
  fi
  sleep 0.5
done
echo "services did not come up (MariaDB on 127.0.0.1:3306, Redis on 127.0.0.1:6379)" >&2
exit 1

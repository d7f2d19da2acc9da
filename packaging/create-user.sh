# The proxy's system user, as docs/jrps-proxy.service expects; made once,
# kept on removal (files it owns may remain in /var/lib/jrps).
if ! getent passwd jrps >/dev/null; then
    useradd --system --user-group --home-dir /var/lib/jrps --no-create-home \
        --shell /usr/sbin/nologin --comment "jrps proxy" jrps
fi

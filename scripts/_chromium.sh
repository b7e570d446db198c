# Sourced by scripts/test: the memory browser's test drives a real headless Chromium, Debian's browser and its
# driver. Installed when missing and this user can (root, or sudo without a password); otherwise that one test
# skips and says why (in CI, where it must run, it fails instead).
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq && apt-get install -y -qq chromium chromium-driver
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        sudo apt-get update -qq && sudo apt-get install -y -qq chromium chromium-driver
    else
        echo "scripts/test: chromium and chromium-driver are not installed (apt-get install chromium" \
             "chromium-driver as root); the memory browser's test will skip" >&2
    fi
fi

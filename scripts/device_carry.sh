#!/usr/bin/env bash
# Build .device-carry/: what a lent GPU machine needs to run benchmarks/device.sh, within
# the 64 MiB a call may send (the repository's tracked files count too).
#   wheels  the packages its image lacks (Python 3.12), installed there with --no-deps
#   models  the default ensemble's converted weights (dlib, mobileface, faceres)
#   data    the album, without its two largest people (person_img29, person_img38)
# Then: device.run(command="bash benchmarks/device.sh", carry=[".device-carry"]).
set -euo pipefail
cd "$(dirname "$0")/.."

CARRY=.device-carry
DATA="${FACEGUARD_TEST_DATA:-../shared/data}"
LEFT_OUT="person_img29 person_img38 _unlabelled_extras"
rm -rf "$CARRY"
mkdir -p "$CARRY/wheels" "$CARRY/models" "$CARRY/data/album"

.venv/bin/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d "$CARRY/wheels" \
  "greenlet==$(sed -n 's/^greenlet==//p' constraints.txt)" \
  "platformdirs==$(sed -n 's/^platformdirs==//p' constraints.txt)" \
  "ssimulacra2==$(sed -n 's/^ssimulacra2==//p' constraints.txt)" \
  facenet-pytorch==2.6.0

for model in dlib mobileface faceres; do
  cp "$(.venv/bin/python -c "from faceguard.models.catalogue import converted_path as p; print(p('$model'))")" \
    "$CARRY/models/"
done

album="$DATA/album"
for entry in "$album"/*; do
  name=$(basename "$entry")
  [[ " $LEFT_OUT " == *" $name "* ]] && continue
  cp -r "$entry" "$CARRY/data/album/"
done
# the labels of the people carried only
grep -v -E "^($(echo "$LEFT_OUT" | tr ' ' '|'))," "$album/labels.csv" > "$CARRY/data/album/labels.csv"
chmod -R u+w "$CARRY"

tracked=$(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)
carried=$(du -sb "$CARRY" | cut -f1)
total=$(( (tracked + carried) / 1048576 ))
echo "device_carry: $CARRY holds $(( carried / 1048576 )) MiB; with the tracked files $total MiB of 64"
[ "$total" -lt 64 ] || { echo "device_carry: over the 64 MiB a call may send" >&2; exit 1; }

#!/usr/bin/env bash
# What a lent GPU machine runs, in one call (at most 9.5 minutes): what a new window
# shape costs the metric (blur_shapes.py), the speed benchmark (album repeated to 120
# photos), the job's timeline (job_timeline.py) and the stage profile, their JSON and
# logs into $OUT.
# First, here: scripts/device_carry.sh; then
#   device.run(command="bash benchmarks/device.sh", carry=[".device-carry"], timeout_s=600)
# The machine's image has torch, numpy, OpenCV, scikit-image and scipy; the rest comes
# as wheels. Without the Real-ESRGAN weights (too large to carry) the stage profile
# records no BL+SR timing; the default cloak does not use it.
set -uo pipefail
CARRY=.device-carry
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site "$CARRY"/wheels/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
export FACEGUARD_TEST_DATA="$PWD/$CARRY/data" FACEGUARD_MODELS="$PWD/$CARRY/models"
export FACEGUARD_CACHE=/tmp/faceguard-cache
OUT="${OUT:-/tmp/device-out}"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

status=0
timeout 45 python3 benchmarks/blur_shapes.py 2>&1 | tee "$OUT/blur.log" || status=1
timeout 200 python3 benchmarks/speed.py --threads 4 --album-size 120 2>&1 | tee "$OUT/speed.log" \
  || status=1
timeout 80 python3 benchmarks/job_timeline.py --threads 4 --runs 2 2>&1 | tee "$OUT/timeline.log" \
  || status=1
timeout 210 python3 benchmarks/stage_profile.py --threads 4 2>&1 | tee "$OUT/profile.log" \
  || status=1
# speed.json is written over the tracked one there: fetched, it becomes speed-cuda.json here
cp benchmarks/results/speed.json benchmarks/results/stage-profile-cuda.json \
  benchmarks/results/blur-shapes-cuda.json benchmarks/results/job-timeline-cuda.json "$OUT"/ \
  2>/dev/null
exit $status

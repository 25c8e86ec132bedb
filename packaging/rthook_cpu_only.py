"""Runtime hook of the CPU-only bundle: hide every GPU from the CUDA runtime.

The bundle carries stubs instead of cuBLAS, cuDNN & co (see cuda_stubs.py), so torch must
never pick a CUDA device, even on a machine with an NVIDIA driver. With no visible
device ``torch.cuda.is_available()`` is False and FaceGuard runs on the CPU.
"""

import os

os.environ["CUDA_VISIBLE_DEVICES"] = ""

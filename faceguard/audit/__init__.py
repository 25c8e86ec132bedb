"""Audit: does a cloak survive purification, and could a platform detect it?

The audit's defaults live here, light to import: the CLI and the app show them before
anything of torch is loaded.
"""

#: the quick default: what people meet when they upload (a recognizer may look at the
#: mirror image too), and the papers' strongest
QUICK_DEFENSES = ("none", "jpeg75", "jpeg50", "mirror", "bilateral", "resize", "bl+sr",
                  "purifier", "avae-fast")
QUICK_DETECTORS = ("wlmp-linear", "wlmp-rbf", "wlmp-rf", "trajectory-lstm")

#: the default time an audit's attackers who train may spend cloaking other people's
#: faces (seconds): about 10-15 faces at the default cloak on 2 cores the first time
ATTACKER_SECONDS = 120.0

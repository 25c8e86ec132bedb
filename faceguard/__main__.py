import sys

from faceguard.cli import main

sys.exit(main())
